"""Catalog drift: which of the configured models each network still lists, and what it lists
that the config does not (`depin-monitor catalog`, and a low-rate check inside `run`)."""
