"""Storage: results/s written through monitor.storage.store, and how long reports take over a
year of one network probed every 3 s (10 million stored results).

How:
- write: N realistic ProbeResults go through `Store.add()` (the scheduler's path) and
  `flush()`; results/s = N / (first add -> flush returned), plus the add() cost on the calling
  (event-loop) thread alone;
- generate: the big store is filled by one SQL statement (a recursive CTE inserting synthetic
  rows straight into `probe_results` of a file the Store created, journal off: ~8 s per
  million rows here), not through Store.add(), which would take minutes; then its daily
  rollups are folded (monitor.storage.rollups.refresh, what the store's writer does as it goes);
  generated stores are cached under --dir and reused when they hold the wanted rows;
- report timings over the whole year (and the latest month), each a fresh read-only open,
  all through monitor.analysis.queries (rollups plus the raw rows they do not cover; every row
  raw with DEPIN_BENCH_ROLLUPS=0):
    sla-month   the month's SLA of the network (exporter.sla_collector.month_reports: what the
                /metrics SLA collector computes at scrape time)
    sla-year    the same SLA maths over the whole year
    raw-rows    the report from every row in Python (store.read_rows + report.build_report:
                the report without rollups); run up to --python-max rows, above that it is
                estimated from the largest size run (it is linear) and marked "est." (n/a
                with --python-max 0: never run)
    rollup      the same report through queries (report.report_from_stores), whole store
    report-cli  `depin-monitor report --db FILE --format json` end to end, with the CLI's
                imports

    python benchmarks/storage.py              # 200k writes, 10M-row reports (~2 min first run)
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
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import common

from monitor.analysis.queries import COLUMNS, aggregate_stores
from monitor.analysis.report import build_report, report_from_stores
from monitor.analysis.sla import judge
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import ENTERPRISE
from monitor.exporter.sla_collector import month_reports
from monitor.storage import rollups
from monitor.storage import store as store_mod
from monitor.storage.filters import RunFilter

YEAR_START = 1735689600.0  # 2025-01-01 00:00 UTC
STEP_S = 3.0
NETWORK = "net-a"


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
    st = store_mod.Store(path)
    try:
        t0 = time.perf_counter()
        c0 = time.thread_time()
        for r in results:
            st.add(r)
        add_s = time.thread_time() - c0
        added = time.perf_counter()
        st.flush(timeout=600)
        t1 = time.perf_counter()
    finally:
        st.close()
    return {"results_per_s": n / (t1 - t0), "add_us": add_s / n * 1e6,
            "add_s": added - t0, "total_s": t1 - t0}


_GENERATE = f"""
with recursive c(i) as (select 0 union all select i + 1 from c where i < :n - 1)
insert into {store_mod.TABLE} (network, target, job, model, outcome, started_at, kind,
  job_version, prompt_hash, location, scheduled_at, http_status, error, connect_s, ttfb_s,
  ttft_s, duration_s, output_tokens, input_tokens, token_source, tokens_per_s, max_gap_s,
  bytes, node, lagged, details)
select '{NETWORK}', 'small', case i % 3 when 0 then 'chat-short-v1' when 1 then 'chat-long-v1'
    else 'json-v1' end, 'm-8b', o, :t0 + i * {STEP_S}, 'openai', 1, 'abcdef0123456789',
  'eu-west-1', :t0 + i * {STEP_S}, case o when 'http_error' then 503 when 'rate_limited'
    then 429 when 'ok' then 200 when 'wrong_output' then 200 else null end,
  case when o in ('ok', 'wrong_output') then '' else 'synthetic' end, null, 0.05 + u / 20,
  case when o in ('ok', 'wrong_output', 'disconnect') then 0.08 * exp(2.5 * u * u) end,
  case when o in ('ok', 'wrong_output') then 0.6 + 3 * u + 0.1 * v end,
  case when o in ('ok', 'wrong_output') then 256 end, 1000, 'usage',
  case when o in ('ok', 'wrong_output') then 40 + 60 * v end,
  case when o in ('ok', 'wrong_output') then 0.02 + u * u end, 70000,
  'node-' || (i % 40), 0, '{{}}'
from (select i, (abs(random()) % 1000000) / 1e6 as u, (abs(random()) % 1000000) / 1e6 as v,
        case when abs(random()) % 1000 < 970 then 'ok'
             else (select o from (select 0 k, 'http_error' o union all select 1, 'disconnect'
                   union all select 2, 'rate_limited' union all select 3, 'wrong_output'
                   union all select 4, 'timeout') where k = abs(random()) % 5) end as o
      from c)
"""


def generate(path: Path, rows: int) -> tuple[float, float]:
    """A store file with `rows` synthetic results 3 s apart from YEAR_START, its rollups
    brought up to date; (seconds generating, seconds folding rollups), 0 for what a cached
    file already had."""
    gen_s = 0.0
    have = -1
    if path.exists():
        with contextlib.closing(sqlite3.connect(path)) as conn:
            try:
                have = conn.execute(f"select count(*) from {store_mod.TABLE}").fetchone()[0]
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
                conn.execute(_GENERATE, {"n": rows, "t0": YEAR_START})
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
    end = YEAR_START + rows * STEP_S
    out: dict[str, tuple[float, bool]] = {}

    def sla_over(start: float) -> Callable[[], object]:
        def run() -> object:
            period = aggregate_stores([path], runs=RunFilter(since=start, until=end))
            report = judge(period.groups[(NETWORK,)], ENTERPRISE, network=NETWORK, start=start,
                           end=end)
            assert report.runs > 0, "the SLA saw no runs"
            return report
        return run

    def sla_month() -> object:  # what the scrape-time SLA collector does
        (report,) = month_reports([path], {NETWORK: ENTERPRISE}, at=end - 1)
        return report

    out["sla-month"] = (timed(sla_month), False)
    out["sla-year"] = (timed(sla_over(YEAR_START)), False)
    if rows <= python_max:
        out["raw-rows"] = (timed(lambda: _raw_report(path)), False)
        cli_per_row["raw-rows"] = out["raw-rows"][0] / rows
    elif "raw-rows" in cli_per_row:
        out["raw-rows"] = (cli_per_row["raw-rows"] * rows, True)
    out["rollup"] = (timed(lambda: report_from_stores([path])), False)
    out["report-cli"] = (timed(lambda: _cli_report(path)), False)
    return out


def _raw_report(path: Path) -> None:
    """The report from every row in Python (what `depin-monitor report` does for a store
    without rollups)."""
    build_report(list(store_mod.read_rows([path], COLUMNS)))


def _cli_report(path: Path) -> None:
    from monitor.cli import main as cli

    with contextlib.redirect_stdout(io.StringIO()):
        cli(["report", "--db", str(path), "--format", "json"])


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
    p.add_argument("--quick", action="store_true", help="smoke run: 5k writes, 20k rows")
    args = p.parse_args(argv)
    if args.quick:
        args.writes, args.rows = 5000, "20000"
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

    rows_out = []
    per_row: dict[str, float] = {}
    if 0 < args.python_max < max(sizes):  # a Python-side size to estimate the big ones from
        sizes = sorted(set(sizes) | {min(args.python_max, max(sizes))})
    for n in sizes:
        path = workdir / f"year-{n}.db"
        gen, roll = generate(path, n)
        size_mb = os.path.getsize(path) / 2**20
        t = report_timings(path, n, args.python_max, per_row)
        rows_out.append([f"{n:,}", f"{gen:.1f} s" if gen else "cached",
                         f"{roll:.1f} s" if roll else "cached", f"{size_mb:,.0f}",
                         *(fmt_s(t.get(k)) for k in
                           ("sla-month", "sla-year", "raw-rows", "rollup", "report-cli"))])
        print(f"  {n:,} rows done", file=sys.stderr, flush=True)
    print(common.table(["rows", "generate", "rollup fold", "file MB", "sla-month", "sla-year",
                        "raw-rows", "rollup", "report-cli"], rows_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
