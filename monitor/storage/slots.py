"""Run counts per (network, location, time slot), straight from `probe_results` of one or more
store files: what the report's quorum view reads (monitor.analysis.quorum). One GROUP BY per
file over the (network, started_at) index; the daily rollups are too coarse for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path

from monitor.storage import domain
from monitor.storage.filters import RunFilter
from monitor.storage.store import TABLE, open_readonly

SlotKey = tuple[str, str, int]  # (network, location, slot number = started_at // slot_s)


def slot_counts(paths: Sequence[str | Path], slot_s: float, runs: RunFilter, *,
                not_judged: Collection[str] = ()) -> tuple[Counter[SlotKey], Counter[SlotKey]]:
    """(judged runs, failed judged runs) per slot, summed over the files. A run is judged
    unless its outcome is in `not_judged`; it failed unless it is `ok`. FileNotFoundError for
    a missing file, sqlite3.DatabaseError for a file that is not a store."""
    if slot_s <= 0:
        raise ValueError("slot_s must be > 0")
    where, params = runs.where()
    # rows out of domain are left out (monitor.storage.domain; the report counts them)
    where += f" and {domain.problem_sql(('network', 'started_at', 'outcome'))} is null"
    skipped = sorted(not_judged)
    judged = f"outcome not in ({', '.join('?' * len(skipped))})" if skipped else "1"
    # With no bound on time or network every row is read: in table order (not through the
    # (network, started_at) index, a lookup per row) it takes a third less time.
    whole = runs.since is None and runs.until is None and not runs.networks
    sql = (f"select network, coalesce(location, ''), cast(started_at / ? as integer) as slot, "
           f"sum({judged}), sum({judged} and outcome != 'ok') from {TABLE}"
           f"{' not indexed' if whole else ''} where {where} group by 1, 2, 3")
    judged_runs: Counter[SlotKey] = Counter()
    failed_runs: Counter[SlotKey] = Counter()
    for path in paths:
        conn = open_readonly(path)
        try:
            for network, location, slot, n_judged, n_failed in conn.execute(
                    sql, [slot_s, *skipped, *skipped, *params]):
                key = (str(network), str(location), int(slot))
                judged_runs[key] += int(n_judged)
                failed_runs[key] += int(n_failed)
        finally:
            conn.close()
    return judged_runs, failed_runs
