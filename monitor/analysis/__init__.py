"""The read path, one way: queries (counts and aggregates for a period, from rollups or raw
rows, chosen in one place) -> sla (pure maths, the SLI names) -> report (one summary builder,
renderers). stats holds the small-sample statistics they share."""
