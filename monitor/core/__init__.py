"""The vocabulary every layer speaks: results and their outcomes, targets, jobs and their
output checks, SLA profiles, durations, user errors. Imports nothing else of the project."""
