"""Storage: the SQLite store of runs (batched writes, migrations) and its daily and weekly
rollups. Knows
results, not protocols, SLAs or reports."""
