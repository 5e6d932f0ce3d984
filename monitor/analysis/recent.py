"""The latest runs, aggregated as they arrive: what a live view (the demo's table) reads
without going over every run again at each refresh.

A run is added to the newest of a few generations of per-group aggregates; once that one is
full a new one starts and the oldest is dropped, so the window holds the last
`max_runs` runs at most (and at least (generations - 1) / generations of that once full). The
aggregates are the rollups' kind (1 %-wide buckets: quantiles within 0.5 %), so reading them
costs the same at 20 runs as at 20,000. Not thread-safe: a reader on another thread holds
the writer's lock around `add` and `groups` (a copy, safe to read afterwards).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from monitor.analysis.queries import Aggregate, GroupKey, Run, group_key


class RecentRuns:
    def __init__(self, max_runs: int, *, by: Sequence[str] = ("network",),
                 generations: int = 4) -> None:
        self.by = tuple(by)
        self.per_generation = max(1, max_runs // generations)
        self._generations: deque[dict[GroupKey, Aggregate]] = deque([{}], maxlen=generations)
        self._in_newest = 0

    def add(self, run: Run) -> None:
        if self._in_newest >= self.per_generation:
            self._generations.append({})  # the deque drops the oldest generation
            self._in_newest = 0
        newest = self._generations[-1]
        key = group_key(run, self.by)
        group = newest.get(key)
        if group is None:
            group = newest[key] = Aggregate(exact=False)
        group.add_run(run, in_maintenance=False)
        self._in_newest += 1

    def groups(self) -> dict[GroupKey, Aggregate]:
        """The window's aggregate of each group: new objects, not shared with the window."""
        out: dict[GroupKey, Aggregate] = {}
        for generation in self._generations:
            for key, group in generation.items():
                out[key] = out.get(key, Aggregate(exact=False)).merged(group)
        return out
