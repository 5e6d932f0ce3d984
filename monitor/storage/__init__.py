"""Storage: the SQLite store of runs (batched writes, migrations) and its daily rollups. Knows
results, not protocols, SLAs or reports."""
