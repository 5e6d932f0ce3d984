"""Daily rollups of `probe_results`, so a report over a year of runs (10 million rows) takes
well under 2 s instead of reading every row into Python.

Per (network, target, job, location, UTC day) the store keeps: runs and token sums per outcome
with the first/last start, the distinct nodes, and histograms of TTFT (runs with a TTFT),
end-to-end and decode rate (completed runs) in log buckets 1 % wide. `refresh()` folds in
every row added since the last refresh (by rowid: late or out-of-order rows are never missed);
the store's writer calls it after its batches. A report (`build_report`) takes the whole days
inside its period from the rollups and reads the rest raw: the period's edge days, days a
maintenance window touches, and rows newer than the last refresh. Counts, rates, tokens and
their intervals are exact; quantiles (and SLA latency counts at a threshold) are those of the
bucket holding the exact nearest-rank value, reported at its geometric middle: within 0.5 %.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.result import Outcome
from monitor.slaprofile import ENTERPRISE, MaintenanceWindow, SLAProfile

GAMMA = 1.01  # bucket width: [GAMMA**b, GAMMA**(b+1))
LN_GAMMA = math.log(GAMMA)
ZERO_BUCKET = -(2**31)  # values <= 0
DAY_S = 86400
REFRESH_CHUNK = 500_000  # rows per transaction when catching up
METRICS = ("ttft", "e2e", "tps")
KEY = ("network", "target", "job", "location")
COMPLETED = (Outcome.OK.value, Outcome.WRONG_OUTPUT.value)
TABLES = ("rollup_runs", "rollup_hist", "rollup_nodes", "rollup_state")

SCHEMA = (
    """create table if not exists rollup_runs (network text not null, target text not null,
    job text not null, location text not null, day integer not null, outcome text not null,
    runs integer not null, output_tokens integer not null, input_tokens integer not null,
    first_at real not null, last_at real not null,
    primary key (network, target, job, location, day, outcome)) without rowid""",
    """create table if not exists rollup_hist (network text not null, target text not null,
    job text not null, location text not null, day integer not null, metric text not null,
    bucket integer not null, n integer not null,
    primary key (network, target, job, location, metric, bucket, day)) without rowid""",
    """create table if not exists rollup_nodes (network text not null, target text not null,
    job text not null, location text not null, day integer not null, node text not null,
    primary key (network, target, job, location, day, node)) without rowid""",
    """create table if not exists rollup_state (id integer primary key check (id = 1),
    rolled_rowid integer not null)""",
)


def bucket(x: float) -> int:
    return ZERO_BUCKET if x <= 0 else math.floor(math.log(x) / LN_GAMMA)


def bucket_value(b: int) -> float:
    """The value a bucket stands for: its geometric middle (0.0 for the zero bucket)."""
    return 0.0 if b == ZERO_BUCKET else GAMMA ** (b + 0.5)


def create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)


def has_rollups(conn: sqlite3.Connection) -> bool:
    names = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
    return set(TABLES) <= names


# -- writing ------------------------------------------------------------------------------

def rolled_rowid(conn: sqlite3.Connection) -> int:
    row = conn.execute("select rolled_rowid from rollup_state where id = 1").fetchone()
    return int(row[0]) if row else 0


class Folder:
    """What the store's writer folds in as it inserts: aggregates of the results it wrote
    (rowids first..last), written to the rollups with the new watermark in one transaction.

    Aggregating the ProbeResults in memory costs a few microseconds a row; re-reading them
    with SQL GROUP BY costs several times that. If the watermark is not where this folder
    starts (rows came from elsewhere, or a crash lost a folder), `write` falls back to
    `refresh`, which re-reads exactly the rows not folded yet."""

    def __init__(self) -> None:
        self.runs: dict[tuple, list] = {}
        self.hist: dict[tuple, int] = {}
        self.nodes: set[tuple] = set()
        self.first_rowid: int | None = None
        self.last_rowid: int | None = None

    def __len__(self) -> int:
        return 0 if self.first_rowid is None else self.last_rowid - self.first_rowid + 1

    def add(self, results: Sequence[Any], first_rowid: int, last_rowid: int) -> None:
        """`results` (ProbeResults) were inserted as rowids first_rowid..last_rowid."""
        if self.last_rowid is not None and first_rowid != self.last_rowid + 1:
            self.first_rowid = None  # not contiguous: let refresh() re-read them all
        if self.first_rowid is None and self.last_rowid is None:
            self.first_rowid = first_rowid
        self.last_rowid = last_rowid
        runs, hist, nodes = self.runs, self.hist, self.nodes
        get = hist.get
        done = (Outcome.OK, Outcome.WRONG_OUTPUT)
        log, floor = math.log, math.floor
        for r in results:
            t = r.started_at
            day = int(t // DAY_S)
            net, tgt, job, loc = r.network, r.target, r.job, r.location or ""
            outcome = r.outcome
            out = r.output_tokens or 0
            key = (net, tgt, job, loc, day, outcome.value)
            entry = runs.get(key)
            if entry is None:
                runs[key] = [1, out, r.input_tokens or 0, t, t]
            else:
                entry[0] += 1
                entry[1] += out
                entry[2] += r.input_tokens or 0
                if t < entry[3]:
                    entry[3] = t
                elif t > entry[4]:
                    entry[4] = t
            v = r.ttft_s
            if v is not None:
                k = (net, tgt, job, loc, "ttft",
                     floor(log(v) / LN_GAMMA) if v > 0 else ZERO_BUCKET, day)
                hist[k] = get(k, 0) + 1
            if outcome in done:
                v = r.duration_s
                if v is not None:
                    k = (net, tgt, job, loc, "e2e",
                         floor(log(v) / LN_GAMMA) if v > 0 else ZERO_BUCKET, day)
                    hist[k] = get(k, 0) + 1
                v = r.tokens_per_s
                if v is not None:
                    k = (net, tgt, job, loc, "tps",
                         floor(log(v) / LN_GAMMA) if v > 0 else ZERO_BUCKET, day)
                    hist[k] = get(k, 0) + 1
            if r.node:
                nodes.add((net, tgt, job, loc, day, r.node))

    def write(self, conn: sqlite3.Connection, _expected: int | None = None) -> None:
        """Upsert the aggregates and move the watermark, in one transaction; then empty."""
        if self.last_rowid is None:
            return
        if not has_rollups(conn):
            create_tables(conn)
        if _expected is None and (self.first_rowid is None
                                  or rolled_rowid(conn) != self.first_rowid - 1):
            self.__init__()  # type: ignore[misc]
            refresh(conn)
            return
        with conn:
            conn.executemany(
                "insert into rollup_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "on conflict do update set runs = runs + excluded.runs, "
                "output_tokens = output_tokens + excluded.output_tokens, "
                "input_tokens = input_tokens + excluded.input_tokens, "
                "first_at = min(first_at, excluded.first_at), "
                "last_at = max(last_at, excluded.last_at)",
                [(*k, *v) for k, v in self.runs.items()])
            conn.executemany(
                "insert into rollup_hist (network, target, job, location, metric, bucket, day, "
                "n) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict do update set n = n + excluded.n",
                [(*k, n) for k, n in self.hist.items()])
            conn.executemany("insert or ignore into rollup_nodes values (?, ?, ?, ?, ?, ?)",
                             list(self.nodes))
            conn.execute("insert into rollup_state (id, rolled_rowid) values (1, ?) "
                         "on conflict (id) do update set rolled_rowid = excluded.rolled_rowid",
                         [self.last_rowid])
        self.__init__()  # type: ignore[misc]


def refresh(conn: sqlite3.Connection) -> int:
    """Fold every row added since the last refresh into the rollups; rowids folded in.
    Rows are read back and folded like the writer folds them (2x faster than SQL GROUP BY
    here); each chunk commits with its new watermark, so a crash never counts a row twice."""
    if not has_rollups(conn):
        create_tables(conn)
    done = rolled_rowid(conn)
    top = conn.execute("select max(rowid) from probe_results").fetchone()[0] or 0
    folded = 0
    while done < top:
        hi = min(done + REFRESH_CHUNK, top)
        folder = Folder()
        rows = conn.execute(f"select {', '.join(_ROW_COLUMNS)} from probe_results "
                            "where rowid > ? and rowid <= ?", [done, hi])
        folder.add([_Row(*row) for row in rows], done + 1, hi)
        folder.write(conn, _expected=done)
        folded += hi - done
        done = hi
    return folded


class _Row:
    """The columns a fold needs, read back from probe_results (ProbeResult's field names)."""

    __slots__ = ("duration_s", "input_tokens", "job", "location", "network", "node",
                 "outcome", "output_tokens", "started_at", "target", "tokens_per_s", "ttft_s")

    def __init__(self, started_at: float, network: str, target: str, job: str,
                 location: str | None, outcome: str, output_tokens: int | None,
                 input_tokens: int | None, ttft_s: float | None, duration_s: float | None,
                 tokens_per_s: float | None, node: str | None) -> None:
        self.started_at, self.network, self.target, self.job = started_at, network, target, job
        self.location, self.outcome = location, _OUTCOMES.get(outcome) or _Other(outcome)
        self.output_tokens, self.input_tokens = output_tokens, input_tokens
        self.ttft_s, self.duration_s, self.tokens_per_s = ttft_s, duration_s, tokens_per_s
        self.node = node


_ROW_COLUMNS = ("started_at", "network", "target", "job", "location", "outcome",
                "output_tokens", "input_tokens", "ttft_s", "duration_s", "tokens_per_s", "node")


class _Other(str):
    """An outcome string this version does not know: folded under its own name."""

    @property
    def value(self) -> str:
        return str(self)


_OUTCOMES = {o.value: o for o in Outcome}


# -- reading ------------------------------------------------------------------------------


@dataclass
class Aggregate:
    """Everything a report row needs, for one group, mergeable from rollups and raw rows."""

    outcomes: Counter[str] = field(default_factory=Counter)
    output_tokens: int = 0
    input_tokens: int = 0
    good_output_tokens: int = 0
    first_at: float = math.inf
    last_at: float = -math.inf
    nodes: set[tuple[str, ...]] = field(default_factory=set)
    hist: dict[str, Counter[int]] = field(
        default_factory=lambda: {m: Counter() for m in METRICS})
    excluded: int = 0  # runs inside maintenance windows (kept out of SLA counts)
    excluded_outcomes: Counter[str] = field(default_factory=Counter)
    excluded_hist: dict[str, Counter[int]] = field(
        default_factory=lambda: {m: Counter() for m in METRICS})

    def add_row(self, row: Mapping[str, Any], in_maintenance: bool) -> None:
        outcome = str(row["outcome"])
        self.outcomes[outcome] += 1
        out = int(row["output_tokens"] or 0)
        self.output_tokens += out
        self.input_tokens += int(row["input_tokens"] or 0)
        if outcome == Outcome.OK.value:
            self.good_output_tokens += out
        t = float(row["started_at"])
        self.first_at = min(self.first_at, t)
        self.last_at = max(self.last_at, t)
        if row.get("node"):
            self.nodes.add((str(row["node"]),))
        values = [("ttft", row["ttft_s"])]
        if outcome in COMPLETED:
            values += [("e2e", row["duration_s"]), ("tps", row["tokens_per_s"])]
        for metric, v in values:
            if v is not None:
                self.hist[metric][bucket(float(v))] += 1
                if in_maintenance:
                    self.excluded_hist[metric][bucket(float(v))] += 1
        if in_maintenance:
            self.excluded += 1
            self.excluded_outcomes[outcome] += 1


def _ranked(hist: Counter[int], q: float) -> tuple[list[int], list[int], int]:
    keys = sorted(hist)
    cum, total = [], 0
    for k in keys:
        total += hist[k]
        cum.append(total)
    return keys, cum, total


def _at_rank(keys: list[int], cum: list[int], rank: int) -> float:
    import bisect

    return bucket_value(keys[bisect.bisect_left(cum, rank)])


def hist_quantile(hist: Counter[int], q: float) -> float | None:
    """Nearest-rank quantile (monitor.stats.quantile's rule) read off the histogram."""
    keys, cum, n = _ranked(hist, q)
    if n == 0:
        return None
    return _at_rank(keys, cum, max(1, math.ceil(q * n - 1e-9)))


def hist_quantile_ci(hist: Counter[int], q: float) -> tuple[float, float] | None:
    """monitor.stats.quantile_ci's order-statistic ranks, read off the histogram."""
    from monitor.stats import Z95

    keys, cum, n = _ranked(hist, q)
    if n == 0:
        return None
    spread = Z95 * math.sqrt(n * q * (1 - q))
    lo = max(1, math.floor(n * q - spread))
    hi = min(n, math.ceil(n * q + spread) + 1)
    return _at_rank(keys, cum, lo), _at_rank(keys, cum, hi)


def _count_where(hist: Counter[int], keep: Any) -> int:
    return sum(n for b, n in hist.items() if keep(bucket_value(b)))


def _store_days(since: float | None, until: float | None) -> tuple[int | None, int | None]:
    """The whole UTC days inside [since, until): [d0, d1) (None: unbounded)."""
    d0 = None if since is None else math.ceil(since / DAY_S)
    d1 = None if until is None else math.floor(until / DAY_S)
    return d0, d1


def _maintenance_days(windows: Sequence[MaintenanceWindow]) -> set[int]:
    days: set[int] = set()
    for w in windows:
        d = math.floor(w.start / DAY_S)
        while d * DAY_S < w.end:
            days.add(d)
            d += 1
    return days


def aggregate(paths: Sequence[str | Path], *, by: Sequence[str] = ("network",),
              since: float | None = None, until: float | None = None,
              networks: Sequence[str] = (), jobs: Sequence[str] = (),
              maintenance: Sequence[MaintenanceWindow] = ()
              ) -> dict[tuple[str, ...], Aggregate]:
    """Group aggregates over store files that have rollups (ValueError for one without)."""
    from monitor.store import COLUMNS as ALL

    groups: dict[tuple[str, ...], Aggregate] = defaultdict(Aggregate)
    mdays = _maintenance_days(maintenance)
    d0, d1 = _store_days(since, until)
    cols = ("network", "target", "job", "location", "started_at", "outcome", "ttft_s",
            "duration_s", "tokens_per_s", "output_tokens", "input_tokens", "node")
    assert set(cols) <= set(ALL)

    def key_of(row: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(row.get(k) or "-") for k in by)

    def covered(network: str, t: float) -> bool:
        return any(w.covers(network, t) for w in maintenance)

    def add_raw(conn: sqlite3.Connection, where: str, params: list[Any]) -> None:
        for values in conn.execute(
                f"select {', '.join(cols)} from probe_results where {where}", params):
            row = dict(zip(cols, values, strict=True))
            t = float(row["started_at"])
            if (since is not None and t < since) or (until is not None and t >= until):
                continue
            if networks and row["network"] not in networks:
                continue
            if jobs and row["job"] not in jobs:
                continue
            groups[key_of(row)].add_row(row, covered(str(row["network"]), t))

    for path in paths:
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
        try:
            if not has_rollups(conn):
                raise ValueError(f"{path}: no rollups (open it once with the current store)")
            rolled = rolled_rowid(conn)
            # 1. whole days from the rollups
            where, params = ["1=1"], []
            if d0 is not None:
                where.append("day >= ?")
                params.append(d0)
            if d1 is not None:
                where.append("day < ?")
                params.append(d1)
            if mdays:
                where.append(f"day not in ({', '.join(str(d) for d in sorted(mdays))})")
            for column, values in (("network", networks), ("job", jobs)):
                if values:
                    where.append(f"{column} in ({', '.join('?' * len(values))})")
                    params += list(values)
            w = " and ".join(where)
            for net, tgt, job, loc, outcome, runs, out, inp, first, last in conn.execute(
                    "select network, target, job, location, outcome, sum(runs), "
                    "sum(output_tokens), sum(input_tokens), min(first_at), max(last_at) "
                    f"from rollup_runs where {w} group by 1, 2, 3, 4, 5", params):
                g = groups[key_of(dict(zip(KEY, (net, tgt, job, loc), strict=True)))]
                g.outcomes[outcome] += runs
                g.output_tokens += out
                g.input_tokens += inp
                if outcome == Outcome.OK.value:
                    g.good_output_tokens += out
                g.first_at = min(g.first_at, first)
                g.last_at = max(g.last_at, last)
            for net, tgt, job, loc, metric, b, n in conn.execute(
                    "select network, target, job, location, metric, bucket, sum(n) "
                    f"from rollup_hist where {w} group by 1, 2, 3, 4, 5, 6", params):
                groups[key_of(dict(zip(KEY, (net, tgt, job, loc), strict=True)))
                       ].hist[metric][b] += n
            for net, tgt, job, loc, node in conn.execute(
                    "select distinct network, target, job, location, node "
                    f"from rollup_nodes where {w}", params):
                groups[key_of(dict(zip(KEY, (net, tgt, job, loc), strict=True)))
                       ].nodes.add((node,))
            # 2. rolled rows outside those days: edges and maintenance days, per network
            #    through the (network, started_at) index
            ranges: list[tuple[float | None, float | None]] = []
            if d0 is not None and since is not None and since < d0 * DAY_S:
                ranges.append((since, d0 * DAY_S))
            if d1 is not None and (until is None or d1 * DAY_S < until):
                ranges.append((d1 * DAY_S, until))
            ranges += [(d * DAY_S, (d + 1) * DAY_S) for d in sorted(mdays)
                       if (d0 is None or d >= d0) and (d1 is None or d < d1)]
            nets = [r[0] for r in conn.execute("select distinct network from rollup_runs")]
            for net in nets:
                if networks and net not in networks:
                    continue
                for lo, hi in ranges:
                    clause = ["network = ?", "rowid <= ?"]
                    p: list[Any] = [net, rolled]
                    if lo is not None:
                        clause.append("started_at >= ?")
                        p.append(lo)
                    if hi is not None:
                        clause.append("started_at < ?")
                        p.append(hi)
                    add_raw(conn, " and ".join(clause), p)
            # 3. rows not rolled up yet
            add_raw(conn, "rowid > ?", [rolled])
        finally:
            conn.close()
    return dict(groups)


def build_report(paths: Sequence[str | Path], *, by: Sequence[str] = ("network",),
                 profiles: Mapping[str, SLAProfile] | None = None,
                 default_profile: SLAProfile = ENTERPRISE,
                 prices: Mapping[str, Mapping[str, float]] | None = None,
                 maintenance: Sequence[MaintenanceWindow] = (),
                 since: float | None = None, until: float | None = None,
                 networks: Sequence[str] = (), jobs: Sequence[str] = ()) -> Any:
    """monitor.report.build_report's Report, from rollups (see the module docstring)."""
    from monitor.report import Report, notes_for

    groups = aggregate(paths, by=by, since=since, until=until, networks=networks, jobs=jobs,
                       maintenance=maintenance)
    network_of = _networks_of(paths, by, groups)
    summaries = [summarise(key, g, (profiles or {}).get(network_of[key], default_profile),
                           (prices or {}).get(network_of[key]), network_of[key])
                 for key, g in sorted(groups.items()) if sum(g.outcomes.values())]
    notes = ["quantiles from daily rollups: within 0.5 % of the exact values",
             *notes_for(summaries)]
    return Report(time.time(), tuple(str(p) for p in paths), since, until, tuple(by),
                  tuple(summaries), tuple(notes))


def _networks_of(paths: Sequence[str | Path], by: Sequence[str],
                 groups: Mapping[tuple[str, ...], Aggregate]) -> dict[tuple[str, ...], str]:
    """Each group's network (the report judges a group by its network's profile)."""
    if "network" in by:
        i = list(by).index("network")
        return {k: k[i] for k in groups}
    return dict.fromkeys(groups, "-")


def sla_counts(g: Aggregate, profile: SLAProfile) -> tuple[Any, dict[str, float | None]]:
    """monitor.sla.Counts (maintenance runs left out, as monitor.sla.evaluate does) and the
    measured quantiles, from an Aggregate."""
    from monitor import sla

    runs = sum(g.outcomes.values())
    ok = g.outcomes.get(Outcome.OK.value, 0)
    limited = g.outcomes.get(Outcome.RATE_LIMITED.value, 0)
    disconnects = g.outcomes.get(Outcome.DISCONNECT.value, 0)
    wrong = g.outcomes.get(Outcome.WRONG_OUTPUT.value, 0)
    completed = ok + wrong

    def less(h: dict[str, Counter[int]], e: dict[str, Counter[int]], m: str) -> Counter[int]:
        out = Counter(h[m])
        out.subtract(e[m])
        return +out

    xo = g.excluded_outcomes
    ttft_h, e2e_h, tps_h = (less(g.hist, g.excluded_hist, m) for m in METRICS)
    c = sla.Counts(runs=runs - g.excluded, excluded=g.excluded, ok=ok - xo[Outcome.OK.value],
                   rate_limited=limited - xo[Outcome.RATE_LIMITED.value],
                   disconnects=disconnects - xo[Outcome.DISCONNECT.value],
                   completed=completed - xo[Outcome.OK.value] - xo[Outcome.WRONG_OUTPUT.value],
                   wrong=wrong - xo[Outcome.WRONG_OUTPUT.value])
    values: dict[str, float | None] = {}
    if profile.ttft_p95_s is not None:
        c.ttft_n = sum(ttft_h.values())
        c.ttft_slow = _count_where(ttft_h, lambda v: v > profile.ttft_p95_s)
        values[sla.SLI_TTFT] = hist_quantile(ttft_h, 0.95)
    if profile.e2e_p99_s is not None:
        c.e2e_n = sum(e2e_h.values())
        c.e2e_slow = _count_where(e2e_h, lambda v: v > profile.e2e_p99_s)
        values[sla.SLI_E2E] = hist_quantile(e2e_h, 0.99)
    if profile.decode_tps_min is not None:
        c.decode_n = sum(tps_h.values())
        c.decode_slow = _count_where(tps_h, lambda v: v < profile.decode_tps_min)
        values[sla.SLI_DECODE] = _median_from_top(tps_h)
    return c, values


def summarise(key: tuple[str, ...], g: Aggregate, profile: SLAProfile,
              price: Mapping[str, float] | None, network: str) -> Any:
    """monitor.report._summarise's GroupSummary from an Aggregate."""
    from monitor import sla
    from monitor.report import GroupSummary, _verdict, effective_cost
    from monitor.stats import wilson

    runs = sum(g.outcomes.values())
    ok = g.outcomes.get(Outcome.OK.value, 0)
    limited = g.outcomes.get(Outcome.RATE_LIMITED.value, 0)
    disconnects = g.outcomes.get(Outcome.DISCONNECT.value, 0)
    wrong = g.outcomes.get(Outcome.WRONG_OUTPUT.value, 0)
    completed = ok + wrong

    c, values = sla_counts(g, profile)
    start, end = g.first_at, g.last_at + 1e-6
    judged = sla.report_from_counts(c, profile, network=network, start=start, end=end,
                                    values=values)

    effective, listed = effective_cost(price, g.input_tokens, g.output_tokens,
                                       g.good_output_tokens)
    ttft, e2e, tps = (g.hist[m] for m in METRICS)
    return GroupSummary(
        key=key, runs=runs, first_at=start, last_at=end, outcomes=dict(g.outcomes),
        availability=ok / runs if runs else None, availability_ci=wilson(ok, runs),
        availability_excl_rate_limited=ok / (runs - limited) if runs > limited else None,
        ttft_p50_s=hist_quantile(ttft, 0.5), ttft_p95_s=hist_quantile(ttft, 0.95),
        ttft_p95_ci=hist_quantile_ci(ttft, 0.95),
        e2e_p50_s=hist_quantile(e2e, 0.5), e2e_p99_s=hist_quantile(e2e, 0.99),
        e2e_p99_ci=hist_quantile_ci(e2e, 0.99),
        decode_tps_median=hist_quantile(tps, 0.5), decode_tps_ci=hist_quantile_ci(tps, 0.5),
        disconnect_rate=disconnects / runs if runs else None,
        disconnect_ci=wilson(disconnects, runs),
        wrong_output_rate=wrong / completed if completed else None,
        wrong_output_ci=wilson(wrong, completed),
        output_tokens=g.output_tokens, good_output_tokens=g.good_output_tokens,
        nodes=len(g.nodes), profile=profile.name,
        verdicts=tuple(_verdict(s) for s in judged.slis),
        effective_usd_per_mtok=effective, list_usd_per_mtok=listed,
    )


def _median_from_top(hist: Counter[int]) -> float | None:
    """sla.evaluate's decode median: nearest rank 0.5 of the values in descending order."""
    keys, cum, n = _ranked(hist, 0.5)
    if n == 0:
        return None
    k = max(1, math.ceil(0.5 * n - 1e-9))
    return _at_rank(keys, cum, n - k + 1)


def refresh_file(path: str | Path) -> int:
    """Bring one store file's rollups up to date (creating them if needed)."""
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        return refresh(conn)
    finally:
        conn.close()

