"""Storage: results/s written through monitor.storage.store, and how long reports take over 10
million stored results with a realistic spread: 10 networks x 3 model tiers x 6 jobs x 3
locations (540 series) over one month, each network with its own failure rate and latencies.

How:
- write: N realistic ProbeResults go through `Store.add()` (the scheduler's path) and
  `flush()`; results/s = N / (first add -> flush returned), plus the add() cost on the calling
  (event-loop) thread alone;
- insert path: the same results inserted two ways, taking turns on fresh files, 5,000 a
  transaction like the writer: executemany of one prepared INSERT (what Store does) and
  sqlite-utils' insert_all (why the writer keeps its raw INSERT: docs/architecture.md);
- generate: the big store is filled by one SQL statement (a recursive CTE inserting synthetic
  rows straight into `probe_results` of a file the Store created, journal off), not through
  Store.add(), which would take minutes: row i is series i % 540 (network, tier, job and
  location), its runs evenly spaced over --days; networks fail 0.1 % to 20 % of their runs
  (timeouts, 5xx, 429s, disconnects, wrong answers), TTFT and decode rate depend on the tier
  and the network. Then the daily rollups are folded (monitor.storage.rollups.refresh, what
  the store's writer does as it goes). Generated stores are cached under --dir;
- report timings, each a fresh read-only open, all through monitor.analysis.queries (rollups
  plus the raw rows they do not cover; every row raw with DEPIN_BENCH_ROLLUPS=0):
    sla-month   the last calendar month's SLA of every network (exporter.sla_collector.
                month_reports: what the /metrics SLA collector computes at scrape time)
    sla-all     the same SLA maths over the whole period
    raw-rows    the report from every row in Python (store.read_rows + report.build_report:
                the report without rollups); run up to --python-max rows, above that it is
                estimated from the largest size run (it is linear) and marked "est." (n/a
                with --python-max 0: never run)
    rollup      the same report through queries (report.report_from_stores), whole store
    report-cli  `depin-monitor report --db FILE --format json` end to end, with the CLI's
                imports (grouped by network, its default)
    report-by   the same grouped by network, target, job and location (540 groups)

    python benchmarks/storage.py              # 200k writes, 10M-row reports (~3 min first run)
    python benchmarks/storage.py --quick      # smoke: 5k writes, 20k rows
    python benchmarks/storage.py --rows 1000000,10000000 --writes 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import common

from monitor.analysis.queries import COLUMNS
from monitor.analysis.report import build_report, report_from_stores
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import ENTERPRISE
from monitor.exporter.sla_collector import month_reports
from monitor.storage import rollups
from monitor.storage import store as store_mod
from monitor.storage.reads import read_rows
from monitor.storage.rows import COLUMNS as STORED
from monitor.storage.rows import TABLE, to_row
from monitor.storage.schema import connect

START = 1764547200.0  # 2025-12-01 00:00 UTC: the generated month is December 2025
NETWORKS = tuple(f"net-{i}" for i in range(10))
TIERS = ("small", "medium", "large")
JOBS = ("chat-short-v1", "chat-long-v1", "json-v1", "needle-8k-v1", "completion-short-v1",
        "embed-v1")
LOCATIONS = ("eu-west-1", "us-east-1", "ap-south-1")
SERIES = len(NETWORKS) * len(TIERS) * len(JOBS) * len(LOCATIONS)
# failed runs per 10,000, by network: a datacenter baseline to a flaky DePIN network
FAILURES_PER_10K = (10, 30, 60, 100, 150, 250, 400, 700, 1200, 2000)


def sample_results(n: int, seed: int = 1) -> list[ProbeResult]:
    """Realistic results (every field a real run fills) for the write benchmark."""
    rng = random.Random(seed)
    jobs = ("chat-short-v1", "chat-long-v1", "json-v1")
    out = []
    t = time.time()
    for i in range(n):
        ok = rng.random() < 0.97
        out.append(ProbeResult(
            network=f"net-{i % 7}", target="small", job=jobs[i % 3], model="m-8b",
            outcome=Outcome.OK if ok else Outcome.DISCONNECT, started_at=t + i * 0.01,
            prompt_hash="abcdef0123456789", location="eu-west-1", scheduled_at=t + i * 0.01,
            http_status=200, error="" if ok else "connection reset by peer",
            connect_s=0.001, ttfb_s=0.05, ttft_s=0.1 + rng.random(), duration_s=3.0,
            output_tokens=256, input_tokens=1000, token_source="usage",
            tokens_per_s=80 + rng.random() * 10, max_gap_s=0.02, bytes=70000,
            served_model="m-8b", system_fingerprint="fp_1", node=f"node-{i % 50}",
            details={"request_id": f"req-{i:08x}"}))
    return out


def bench_writes(path: Path, n: int) -> dict[str, float]:
    results = sample_results(n)
    # held in memory up to n: the writer's throughput, not the failing store's bound
    # (Store's default buffer_limit drops the oldest past 50,000 waiting results)
    st = store_mod.Store(path, buffer_limit=n)
    try:
        t0 = time.perf_counter()
        c0 = time.thread_time()
        for r in results:
            st.add(r)
        add_s = time.thread_time() - c0
        added = time.perf_counter()
        st.flush(timeout=600)
        t1 = time.perf_counter()
        if st.written != n:
            raise SystemExit(f"write: {st.written:,} of {n:,} results stored "
                             f"({st.dropped:,} dropped): the figure would be wrong")
    finally:
        st.close()
    return {"results_per_s": n / (t1 - t0), "add_us": add_s / n * 1e6,
            "add_s": added - t0, "total_s": t1 - t0}



def bench_insert_paths(tmp: Path, n: int, runs: int, batch: int = store_mod.BATCH_ROWS
                       ) -> dict[str, list[float]]:
    """The writer's insert two ways, results/s of each run, on fresh files made by Store,
    `batch` results a transaction as the writer commits them, the two ways taking turns
    (first in even runs, second in odd ones) so a machine busy with other work slows both:
    one prepared INSERT through executemany (what Store does) and sqlite-utils' insert_all
    (a dict per row, multi-row INSERTs of its own batch size). Timed from the ProbeResults,
    so each includes its row conversion."""
    results = sample_results(n)
    insert = (f"insert into {TABLE} ({', '.join(STORED)}) "
              f"values ({', '.join('?' * len(STORED))})")
    out: dict[str, list[float]] = {"executemany": [], "insert_all": []}
    for i in range(runs):
        for way in sorted(out, reverse=bool(i % 2)):
            path = tmp / f"{way}-{i}.db"
            store_mod.Store(path).close()  # the schema exactly as the store makes it
            db = connect(path)
            t0 = time.perf_counter()
            for k in range(0, n, batch):
                chunk = results[k:k + batch]
                with db.conn:
                    if way == "executemany":
                        db.conn.executemany(insert, [to_row(r) for r in chunk])
                    else:
                        db.table(TABLE).insert_all(dict(zip(STORED, to_row(r), strict=True))
                                                   for r in chunk)
            out[way].append(n / (time.perf_counter() - t0))
            stored = db.execute(f"select count(*) from {TABLE}").fetchone()[0]
            db.close()
            if stored != n:
                raise SystemExit(f"{way}: {stored:,} of {n:,} rows stored")
    return out

_GENERATE = f"""
with recursive c(i) as (select 0 union all select i + 1 from c where i < :n - 1)
insert into {TABLE} (network, target, job, model, outcome, started_at, kind,
  job_version, prompt_hash, location, scheduled_at, http_status, error, connect_s, ttfb_s,
  ttft_s, duration_s, output_tokens, input_tokens, token_source, tokens_per_s, max_gap_s,
  bytes, node, lagged, details)
select 'net-' || net, tier_name, job_name, 'model-' || tier_name, o,
  :t0 + (i / {SERIES}) * :step + (i % {SERIES}) * :step / {SERIES}, 'openai', 1,
  'abcdef0123456789', location,
  :t0 + (i / {SERIES}) * :step + (i % {SERIES}) * :step / {SERIES},
  case o when 'http_error' then 503 when 'rate_limited' then 429 when 'ok' then 200
    when 'wrong_output' then 200 else null end,
  case when o in ('ok', 'wrong_output') then '' else 'synthetic' end, null,
  (0.04 + 0.03 * tier) * (1 + net / 5.0) + u / 20,
  case when o in ('ok', 'wrong_output', 'disconnect')
    then (0.08 + 0.12 * tier) * (1 + net / 4.0) * exp(2.5 * u * u) end,
  case when o in ('ok', 'wrong_output') then (0.6 + 3 * u + 0.1 * v) * (1 + tier) end,
  case when o in ('ok', 'wrong_output') then 256 end, 1000, 'usage',
  case when o in ('ok', 'wrong_output') then (40 + 60 * v) / (1 + tier) / (1 + net / 10.0) end,
  case when o in ('ok', 'wrong_output') then 0.02 + u * u end, 70000,
  'node-' || net || '-' || (i % 37), 0, '{{}}'
from (select i, i % 10 as net, (i / 10) % 3 as tier, (i / 30) % 6 as job,
        case (i / 10) % 3 when 0 then 'small' when 1 then 'medium' else 'large' end
          as tier_name,
        case (i / 30) % 6 when 0 then 'chat-short-v1' when 1 then 'chat-long-v1'
          when 2 then 'json-v1' when 3 then 'needle-8k-v1' when 4 then 'completion-short-v1'
          else 'embed-v1' end as job_name,
        case (i / 180) % 3 when 0 then 'eu-west-1' when 1 then 'us-east-1'
          else 'ap-south-1' end as location,
        (abs(random()) % 1000000) / 1e6 as u, (abs(random()) % 1000000) / 1e6 as v,
        case when abs(random()) % 10000 >= (case i % 10 {
            " ".join(f"when {k} then {f}" for k, f in enumerate(FAILURES_PER_10K))} end)
             then 'ok'
             else (select o from (select 0 k, 'http_error' o union all select 1, 'disconnect'
                   union all select 2, 'rate_limited' union all select 3, 'wrong_output'
                   union all select 4, 'timeout') where k = abs(random()) % 5) end as o
      from c)
"""


def generate(path: Path, rows: int, days: float = 30.0) -> tuple[float, float]:
    """A store file with `rows` synthetic results of the 540 series over `days` from START, its
    rollups brought up to date; (seconds generating, seconds folding rollups), 0 for what a
    cached file already had."""
    gen_s = 0.0
    have = -1
    if path.exists():
        with contextlib.closing(sqlite3.connect(path)) as conn:
            try:
                have = conn.execute(f"select count(*) from {TABLE}").fetchone()[0]
            except sqlite3.Error:
                have = -1
    if have != rows:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        store_mod.Store(path).close()  # the schema exactly as the store makes it
        t0 = time.perf_counter()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            # Bulk load: no journal, no fsync, a big page cache; WAL again afterwards as the
            # store runs it. (Through the WAL every page would be written twice.)
            conn.execute("pragma journal_mode=off")
            conn.execute("pragma synchronous=off")
            conn.execute("pragma cache_size=-262144")
            with conn:
                conn.execute(_GENERATE, {"n": rows, "t0": START,
                                         "step": days * 86400 / max(rows / SERIES, 1)})
            conn.execute("pragma journal_mode=wal")
        gen_s = time.perf_counter() - t0
    roll_s = 0.0
    if _with_rollups():
        t0 = time.perf_counter()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            folded = rollups.refresh(conn)  # what the store's writer does after its batches
        roll_s = time.perf_counter() - t0 if folded else 0.0
    return gen_s, roll_s


def _with_rollups() -> bool:
    """Rollups are folded unless DEPIN_BENCH_ROLLUPS=0 (then every read is of raw rows)."""
    return os.environ.get("DEPIN_BENCH_ROLLUPS", "1") != "0"


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def report_timings(path: Path, rows: int, python_max: int,
                   cli_per_row: dict[str, float]) -> dict[str, tuple[float, bool]]:
    """name -> (seconds, estimated?)."""
    out: dict[str, tuple[float, bool]] = {}
    profiles = dict.fromkeys(NETWORKS, ENTERPRISE)

    def sla_month() -> object:  # what the scrape-time SLA collector does
        reports = month_reports([path], profiles, at=START + 86400)
        assert sum(r.runs for r in reports) > 0, "the SLA saw no runs"
        return reports

    out["sla-month"] = (timed(sla_month), False)
    if rows <= python_max:
        out["raw-rows"] = (timed(lambda: _raw_report(path)), False)
        cli_per_row["raw-rows"] = out["raw-rows"][0] / rows
    elif "raw-rows" in cli_per_row:
        out["raw-rows"] = (cli_per_row["raw-rows"] * rows, True)
    out["rollup"] = (timed(lambda: report_from_stores([path])), False)
    out["report-cli"] = (timed(lambda: _cli_report(path)), False)
    out["report-by"] = (timed(lambda: _cli_report(
        path, "--by", "network,target,job,location")), False)
    return out


def _raw_report(path: Path) -> None:
    """The report from every row in Python (what `depin-monitor report` does for a store
    without rollups)."""
    build_report(list(read_rows([path], COLUMNS)))


def _cli_report(path: Path, *options: str) -> None:
    from monitor.cli import main as cli

    with contextlib.redirect_stdout(io.StringIO()):
        code = cli(["report", "--db", str(path), "--format", "json", *options])
    assert code == 0, f"report exited {code}"


REPORTS = ("sla-month", "raw-rows", "rollup", "report-cli", "report-by")


def store_path(workdir: Path, rows: int) -> Path:
    """Where a generated store of `rows` is cached (the spread is part of the name)."""
    return workdir / f"spread{SERIES}-{rows}.db"


def fmt_s(value: tuple[float, bool] | None) -> str:
    if value is None:
        return "n/a"
    s, est = value
    text = f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2f} s"
    return ("~" + text + " est.") if est else text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--writes", type=int, default=200_000, help="results written via Store")
    p.add_argument("--rows", default="10000000", help="stored rows to report over (comma list)")
    p.add_argument("--python-max", type=int, default=1_000_000,
                   help="largest size to run the Python-side reports on (else estimated from "
                        "it; 0: never run, shown as n/a)")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "depin-bench"),
                   help="where generated stores are kept (reused across runs)")
    p.add_argument("--insert-rows", type=int, default=50_000,
                   help="results inserted each way when comparing the insert paths")
    p.add_argument("--insert-runs", type=int, default=5, help="runs of each insert path")
    p.add_argument("--quick", action="store_true", help="smoke run: 5k writes, 20k rows")
    args = p.parse_args(argv)
    if args.quick:
        args.writes, args.rows = 5000, "20000"
        args.insert_rows, args.insert_runs = 5000, 2
    sizes = [int(x) for x in args.rows.split(",")]
    if min(sizes) < 1:
        p.error(f"--rows {args.rows}: every size must be at least 1 row")
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# storage: {common.machine()}")
    print(f"# sqlite {sqlite3.sqlite_version}; store files in {workdir}; command: "
          f"{' '.join(['python', *sys.argv])}")

    with tempfile.TemporaryDirectory() as tmp:
        w = bench_writes(Path(tmp) / "writes.db", args.writes)
    print(f"write: {args.writes:,} results through Store.add()+flush() in {w['total_s']:.2f} s "
          f"= {w['results_per_s']:,.0f} results/s (add() on the caller: "
          f"{w['add_us']:.1f} us CPU each)")

    with tempfile.TemporaryDirectory() as tmp:
        ways = bench_insert_paths(Path(tmp), args.insert_rows, args.insert_runs)
    median = {way: statistics.median(rates) for way, rates in ways.items()}
    print(f"insert path: {args.insert_rows:,} results, {store_mod.BATCH_ROWS:,} a transaction, "
          f"{args.insert_runs} runs each taking turns: executemany of one prepared INSERT "
          f"(Store's) {median['executemany']:,.0f} results/s median "
          f"({', '.join(f'{r:,.0f}' for r in ways['executemany'])}); sqlite-utils insert_all "
          f"{median['insert_all']:,.0f} results/s "
          f"({', '.join(f'{r:,.0f}' for r in ways['insert_all'])}); "
          f"ratio {median['executemany'] / median['insert_all']:.2f}")

    rows_out = []
    per_row: dict[str, float] = {}
    if 0 < args.python_max < max(sizes):  # a Python-side size to estimate the big ones from
        sizes = sorted(set(sizes) | {min(args.python_max, max(sizes))})
    for n in sizes:
        path = store_path(workdir, n)
        gen, roll = generate(path, n)
        size_mb = os.path.getsize(path) / 2**20
        t = report_timings(path, n, args.python_max, per_row)
        rows_out.append([f"{n:,}", f"{gen:.1f} s" if gen else "cached",
                         f"{roll:.1f} s" if roll else "cached", f"{size_mb:,.0f}",
                         *(fmt_s(t.get(k)) for k in REPORTS)])
        print(f"  {n:,} rows done", file=sys.stderr, flush=True)
    print(common.table(["rows", "generate", "rollup fold", "file MB", *REPORTS], rows_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
