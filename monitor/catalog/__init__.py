"""Catalog drift: which of the configured models each network still lists, and what it lists
that the config does not (`depin-monitor catalog`, and a low-rate check inside `run`)."""

CHECK_EVERY_S = 3600.0  # `run` rereads listings hourly: catalogs change over days
