"""Every command on generated hostile input, in this process through the CLI's main(): config
fields of every kind, options of every command and rows of a store, each generated from a
class of mistakes (a value out of range, NaN and infinity, a bad port, a control character, an
unclosed bracket, a path that cannot be written, text where a number belongs). Each answer
must be clean: no exception escapes main(), nothing hangs (a timer per call), invalid input
never exits 0 and a store's rows are all either read or counted as ignored.

Reproducible in CI: derandomized, no example database, a fixed number of examples per class.
The cases a hostile-input review found first are kept as explicit @example entries."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import shutil
import signal
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.analysis import status
from monitor.analysis.incidents import read_streaks
from monitor.cli import main
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import ENTERPRISE
from monitor.exporter.sla_collector import month_reports
from monitor.storage.store import Store

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=25,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CALL_LIMIT_S = 20.0  # a call still running after this is a hang


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `depin-monitor argv`; an exception escaping main() (a
    traceback for the user) or a hang fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            time_limit(CALL_LIMIT_S):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def refused(argv: Sequence[str]) -> str:
    """The command refuses `argv` cleanly: exit 2 and an error on stderr, nothing run."""
    code, out, err = cli(argv)
    assert code == 2, f"{argv!r} exited {code}, not 2 (stdout {out[-300:]!r})"
    lines = [line for line in err.splitlines() if line.strip()]
    # ours: `depin-monitor: error: ...` (a config's mistakes one a line); argparse's: usage
    # lines, then `depin-monitor CMD: error: ...`
    assert any(line.startswith("depin-monitor") and ": error: " in line for line in lines), \
        f"{argv!r}: no error line in {err!r}"
    assert "Traceback" not in err
    return err


# -- hostile values, by class ------------------------------------------------------------------

NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
CONTROL = st.characters(min_codepoint=0, max_codepoint=31) | st.sampled_from([" ", "\x7f"])
HOSTS = st.sampled_from(["127.0.0.1", "api.example.com", "[::1]", "localhost"])


@st.composite
def bad_urls(draw: st.DrawFn, schemes: Sequence[str] = ("http", "https")) -> str:
    """A URL wrong in one way: the port, a control character or space, a bracket, the
    scheme, no host."""
    host = draw(HOSTS)
    scheme = draw(st.sampled_from(list(schemes)))
    kind = draw(st.sampled_from(["port", "control", "bracket", "scheme", "nohost"]))
    if kind == "port":
        port = draw(st.integers(65536, 10**7) | st.integers(-10**6, 0))
        return f"{scheme}://{host}:{port}/v1"
    if kind == "control":
        ch = draw(CONTROL)
        at = draw(st.sampled_from(["host", "path"]))
        return f"{scheme}://{host}{ch}x/v1" if at == "host" else f"{scheme}://{host}/v{ch}1"
    if kind == "bracket":
        return draw(st.sampled_from([f"{scheme}://[::1/v1", f"{scheme}://::1]/v1",
                                     f"{scheme}://[::1:8080/v1", f"{scheme}://[zz]/v1"]))
    if kind == "scheme":
        return f"{draw(st.sampled_from(['ftp', 'file', 'ws', 'gopher', '']))}://{host}/v1"
    return draw(st.sampled_from([f"{scheme}://", f"{scheme}:///v1", "not a url", "//x/v1"]))


BAD_LISTEN = st.sampled_from(["[::1:9464", "::1]:9464", "0.0.0.0:99999", "host name:1",
                              "127.0.0.1:", "127.0.0.1:-1", "[::1]:65536", "a:b"]) | \
    st.integers(65536, 10**6).map(lambda p: f"127.0.0.1:{p}")
BAD_DURATION = (NON_FINITE.map(str) | st.sampled_from(["0", "-1", "0s", "-5s", "1y", "400d",
                                                        "abc", "1e999", "", " "])
                | st.floats(max_value=0).map(str))
BAD_NAMES = st.sampled_from(["bad name!", "-lead", "a/b", "x" * 300, "", "é"]) | \
    CONTROL.map(lambda c: f"api{c}example.com")


def bad_number(lo: float, hi: float, *, whole: bool = False) -> st.SearchStrategy[Any]:
    """A number outside [lo, hi], or not finite, or (whole) not whole."""
    out = NON_FINITE | st.floats(max_value=lo, exclude_max=True, allow_nan=False) | \
        st.floats(min_value=hi, exclude_min=True, allow_nan=False)
    if whole:
        out = out | st.integers(max_value=int(lo) - 1) | st.integers(min_value=int(hi) + 1)
    return out


# -- 1. config fields --------------------------------------------------------------------------

BASE = {"networks": [{"name": "alpha", "base_url": "http://127.0.0.1:9/v1", "model": "m",
                      "sla": "enterprise"}]}


def config_with(path: Sequence[Any], value: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(BASE))
    node: Any = data
    for part in path[:-1]:
        if isinstance(part, str) and part not in node:
            node[part] = {}
        node = node[part]
    node[path[-1]] = value
    return data


DAY = 86400
CONFIG_MISTAKES = st.one_of(
    bad_urls().map(lambda u: (("networks", 0, "base_url"), u)),
    bad_urls(("http", "https")).map(lambda u: (("networks", 0, "proxy"), u)),
    bad_urls().map(lambda u: (("networks", 0, "catalog_url"), u)),
    bad_urls().map(lambda u: (("alerting", "runbook_url"), u)),
    BAD_LISTEN.map(lambda v: (("listen",), v)),
    BAD_NAMES.map(lambda v: (("networks", 0, "tls"), {"server_name": v})),
    st.tuples(st.sampled_from(["X A", "X:A", "", "X\nA", "X\x00"]), st.just("v")).map(
        lambda h: (("networks", 0, "headers"), {h[0]: h[1]})),
    CONTROL.filter(lambda c: c != " " and c != "\t").map(
        lambda c: (("networks", 0, "headers"), {"X-A": f"a{c}b"})),
    BAD_DURATION.map(lambda v: (("networks", 0, "interval"), v)),
    bad_number(1, 1000, whole=True).map(lambda v: (("networks", 0, "concurrency"), v)),
    bad_number(0, 1e9).map(lambda v: (("networks", 0, "monthly_spend_usd"), v)),
    bad_number(0, 1e9).map(lambda v: (("networks", 0, "price_per_mtok"),
                                      {"input": v, "output": 1.0})),
    bad_number(1, 100, whole=True).map(lambda v: (("quorum",), v)),
    bad_number(1, 10_000_000, whole=True).map(lambda v: (("store", "buffer_results"), v)),
    bad_number(0, 7_258_118_400).map(lambda v: (("maintenance",), [{"start": 0, "end": v}])),
    st.integers(367, 10**5).map(lambda d: (("maintenance",),
                                           [{"start": 1e9, "end": 1e9 + d * DAY}])),
    st.sampled_from(["yesterday", "2026-13-01", "10000-01-01", "1960-01-01T00:00:00Z"]).map(
        lambda v: (("maintenance",), [{"start": v, "end": "2026-01-02T00:00:00Z"}])),
    bad_number(0, 1).map(lambda v: (("sla_profiles",), {"gold": {"availability": v}})),
    (NON_FINITE | st.floats(max_value=0)).map(
        lambda v: (("sla_profiles",), {"gold": {"ttft_p95_s": v}})),
    bad_number(0, 1e9).map(lambda v: (("networks", 0, "capacity"), {"max_spend": v})),
    BAD_DURATION.map(lambda v: (("cert_expiry_warning",), v)),
    BAD_DURATION.map(lambda v: (("store", "shutdown_timeout"), v)),
    BAD_NAMES.map(lambda v: (("location",), v)),
)


@FUZZ
@given(mistake=CONFIG_MISTAKES)
@example(mistake=(("maintenance",), [{"start": 10**20, "end": 10**21}]))
@example(mistake=(("networks", 0, "base_url"), "http://127.0.0.1:99999/v1"))
@example(mistake=(("networks", 0, "base_url"), "http://127.0.0.1:-1/v1"))
@example(mistake=(("networks", 0, "base_url"), "http://a b/v1"))
@example(mistake=(("networks", 0, "base_url"), "http://a\x00b/v1"))
@example(mistake=(("networks", 0, "proxy"), "http://proxy:99999"))
@example(mistake=(("networks", 0, "headers"), {"X-A": "a\r\nb"}))
@example(mistake=(("networks", 0, "headers"), {"X A": "v"}))
@example(mistake=(("listen",), "[::1:9464"))
def test_a_config_mistake_is_refused_by_check_and_report(
        tmp_path_factory: pytest.TempPathFactory, mistake: tuple[Sequence[Any], Any]) -> None:
    path, value = mistake
    config = tmp_path_factory.mktemp("config") / "monitor.yaml"
    config.write_text(yaml.safe_dump(config_with(path, value), allow_unicode=True))
    refused(["check", "-c", str(config)])
    refused(["report", "--db", str(STORE_PATH), "-c", str(config)])


def test_the_inputs_the_mistakes_are_made_from_are_accepted() -> None:
    """The control: the base config, store and options pass, so a refusal above is the
    mistake's."""
    assert cli(["check", "-c", str(CONFIG_PATH)])[0] == 0
    assert cli(["report", "--db", str(STORE_PATH), "-c", str(CONFIG_PATH)])[0] == 0
    assert cli(["rules", "-c", str(CONFIG_PATH), "--runbook-base",
                "https://wiki.example.com/runbooks"])[0] == 0
    assert cli(["simulate", "--list", "--set", "p_eof=0.5"])[0] == 0


# -- 2. options of every command ---------------------------------------------------------------

ADHOC = ["probe", "--url", "http://127.0.0.1:1/v1", "--model", "m"]
LADDER = [*ADHOC, "--capacity", "--price", "0.1,0.3"]


@st.composite
def bad_argv(draw: st.DrawFn) -> list[str]:
    """A command line with one option given a value of a class it must refuse."""
    base_yaml, db, text_file, folder = (str(p) for p in (CONFIG_PATH, STORE_PATH, TEXT_PATH,
                                                         TEXT_PATH.parent))
    under_file = f"{text_file}/x"
    out_paths = st.sampled_from([folder, under_file, f"{folder}/"])
    bad_stores = st.sampled_from([folder, text_file, str(FOREIGN_PATH), f"{folder}/none.db"])
    cases = [
        bad_urls().map(lambda u: ["probe", "--url", u, "--model", "m"]),
        bad_urls().map(lambda u: [*ADHOC, "--proxy", u]),
        BAD_NAMES.filter(bool).map(lambda n: [*ADHOC, "--server-name", n]),
        BAD_NAMES.filter(bool).map(lambda n: [*ADHOC, "--api-key-env", n]),
        BAD_DURATION.filter(lambda v: not v.startswith("-")).map(
            lambda v: [*ADHOC, f"--timeout={v}"]),
        st.integers(max_value=0).map(lambda n: [*ADHOC, f"--count={n}"]),
        st.integers(max_value=0).map(lambda n: [*ADHOC, f"--concurrency={n}"]),
        bad_number(0, 1e9).map(lambda v: [*LADDER, f"--max-spend={v!r}"]),
        bad_number(0, 1e9).map(lambda v: [*ADHOC, "--capacity", f"--price={v!r},1"]),
        st.integers(max_value=0).map(lambda n: [*LADDER, f"--max-requests={n}"]),
        st.integers(10_001, 10**12).map(lambda n: [*LADDER, f"--ladder=1,{n}"]),
        st.sampled_from(["0,1", "4,1", "1,1", "", "1,,2", "x", "-1"]).map(
            lambda v: [*LADDER, f"--ladder={v}"]),
        st.integers(max_value=0).map(lambda n: [*LADDER, f"--max-concurrency={n}"]),
        bad_number(1, 1000, whole=True).filter(lambda v: isinstance(v, int)).map(
            lambda n: [*LADDER, f"--requests-per-stream={n}"]),
        BAD_DURATION.filter(lambda v: not v.startswith("-")).map(
            lambda v: [*LADDER, f"--step-duration={v}"]),
        out_paths.map(lambda p: ["report", "--db", db, "-o", p]),
        out_paths.map(lambda p: ["report", "--db", db, "--runs", "-o", p]),
        st.sampled_from([folder, db, f"{folder}/none.env"]).flatmap(
            lambda p: st.sampled_from([["check", "-c", base_yaml, "--env-file", p],
                                       ["rules", "-c", base_yaml, "--env-file", p]])),
        bad_stores.map(lambda p: ["report", "--db", p]),
        st.sampled_from(["yesterday", "1e999", "10000-01-01", "1960-01-01", "nan"]).map(
            lambda v: ["report", "--db", db, "--since", v]),
        st.tuples(st.integers(1, 300), st.integers(0, 300)).map(
            lambda d: ["report", "--db", db, "--since", f"{d[1]}d" if d[1] else "1s",
                       "--until", f"{d[0] + d[1]}d"]),
        st.integers(max_value=0).map(lambda n: ["report", "--db", db, f"--quorum={n}"]),
        BAD_DURATION.filter(lambda v: not v.startswith("-")).map(
            lambda v: ["report", "--db", db, "--quorum=1", f"--quorum-slot={v}"]),
        bad_number(0, 1e6).map(lambda v: ["rules", "-c", base_yaml, f"--time-scale={v!r}"]),
        bad_urls().map(lambda u: ["rules", "-c", base_yaml, "--runbook-base", u]),
        out_paths.map(lambda p: ["rules", "-c", base_yaml, "-o", p]),
        BAD_DURATION.filter(lambda v: not v.startswith("-")).map(
            lambda v: ["catalog", "-c", base_yaml, f"--timeout={v}"]),
        bad_number(0, 86400).map(lambda v: ["run", "-c", base_yaml, "--once",
                                            f"--grace={v!r}", "--db", db]),
        BAD_LISTEN.map(lambda v: ["run", "-c", base_yaml, "--once", "--listen", v, "--db", db]),
        bad_stores.filter(lambda p: not p.endswith("none.db")).map(
            lambda p: ["run", "-c", base_yaml, "--once", "--db", p]),
        BAD_NAMES.filter(bool).map(lambda n: ["run", "-c", base_yaml, "--once",
                                              "--location", n, "--db", db]),
        st.sampled_from(["nan", "inf", "-inf", "-1", "1e999"]).map(
            lambda v: ["demo", f"--duration={v}"]),
        BAD_LISTEN.map(lambda v: ["demo", "--duration=1", "--listen", v]),
        st.tuples(st.sampled_from(["p_eof", "p_reset", "p_stall", "p_wrong", "p_http_5xx"]),
                  bad_number(0, 1)).map(lambda s: ["simulate", "--list", "--set",
                                                   f"{s[0]}={s[1]!r}"]),
        st.integers(65536, 10**6).map(lambda p: ["simulate", "--list", f"--port={p}"]),
        st.just(["equality", "-c", base_yaml, "-o", f"{folder}/s.json"]),
        out_paths.map(lambda p: ["equality", "-c", base_yaml, "--save", "alpha", "-o",
                                 p if p != folder else f"{under_file}/s.json"]),
        bad_stores.filter(lambda p: not p.endswith("none.db")).map(
            lambda p: ["equality", "-c", base_yaml, "--db", p]),
    ]
    return draw(st.one_of(cases))


@settings(FUZZ, max_examples=90)
@given(argv=bad_argv())
@example(argv=["rules", "-c", "{config}", "--time-scale=nan"])
@example(argv=["catalog", "-c", "{config}", "--timeout=nan"])
@example(argv=["probe", "--url", "http://[::1/v1", "--model", "m"])
@example(argv=["probe", "--url", "http://127.0.0.1:99999/v1", "--model", "m"])
@example(argv=[*ADHOC, "--proxy", "ftp://proxy.example.com"])
@example(argv=[*ADHOC, "--server-name", "bad name!"])
@example(argv=["rules", "-c", "{config}", "--runbook-base", "not a url"])
@example(argv=[*ADHOC, "--timeout=inf"])
@example(argv=["run", "-c", "{config}", "--once", "--grace=nan", "--db", "{store}"])
@example(argv=[*LADDER, "--max-spend=nan"])
@example(argv=[*LADDER, "--max-requests=0"])
@example(argv=["report", "--db", "{store}", "--since", "1d", "--until", "2d"])
@example(argv=["equality", "-c", "{config}", "-o", "{folder}/s.json"])
@example(argv=["simulate", "--set", "p_eof=2"])
@example(argv=["demo", "--duration=nan"])
@example(argv=["report", "--db", "{store}", "-o", "{folder}"])
@example(argv=["report", "--db", "{store}", "-o", "{text}/x"])
@example(argv=["rules", "-c", "{config}", "-o", "{folder}"])
@example(argv=["rules", "-c", "{config}", "-o", "{text}/x.yml"])
@example(argv=["equality", "-c", "{config}", "--save", "alpha", "-o", "{text}/s.json"])
@example(argv=["equality", "-c", "{config}", "--db", "{folder}"])
@example(argv=["equality", "-c", "{config}", "--db", "{text}"])
@example(argv=["report", "--db", "{foreign}"])
def test_an_invalid_option_is_refused_before_any_work(argv: list[str]) -> None:
    names = {"{config}": CONFIG_PATH, "{store}": STORE_PATH, "{folder}": TEXT_PATH.parent,
             "{text}": TEXT_PATH, "{foreign}": FOREIGN_PATH}
    argv = [re.sub(r"\{\w+\}", lambda m: str(names[m.group(0)]), a) for a in argv]
    before = STORE_PATH.stat().st_mtime_ns
    files = fixture_names()
    refused(argv)
    assert STORE_PATH.stat().st_mtime_ns == before, "a refused command wrote to the store"
    assert fixture_names() == files, "a refused command left a file behind"


def fixture_names() -> set[str]:
    return {p.name for p in TEXT_PATH.parent.iterdir() if not p.name.endswith(("-shm", "-wal"))}


# -- 3. rows of a store ------------------------------------------------------------------------

INT64 = st.integers(-(2**63), 2**63 - 1)
HOSTILE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), INT64, NON_FINITE,
    st.sampled_from(["NaN", "inf", "-inf", "1e999", "many", "yesterday", "", "0x10", "1,5",
                     "2026-01-01"]),
    st.text(max_size=8), st.binary(max_size=4))
NUMERIC_COLUMNS = ("started_at", "ttft_s", "duration_s", "tokens_per_s", "output_tokens",
                   "input_tokens", "retry_after_s", "http_status")
TEXT_COLUMNS = ("network", "target", "job", "outcome", "location", "node", "details")


@st.composite
def hostile_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    now = time.time()
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row: dict[str, Any] = {"network": "alpha", "target": "small", "job": "chat-short-v1",
                               "model": "m", "outcome": "ok", "kind": "openai",
                               "started_at": now - 60, "ttft_s": 0.1, "duration_s": 1.0}
        for column in draw(st.lists(st.sampled_from(NUMERIC_COLUMNS + TEXT_COLUMNS),
                                    min_size=1, max_size=3, unique=True)):
            value = draw(HOSTILE)
            if isinstance(value, float) and math.isnan(value) and column in (
                    "network", "target", "job", "outcome", "started_at"):
                continue  # SQLite stores NaN as NULL: the NOT NULL column refuses the row
            row[column] = value
        rows.append(row)
    return rows


GOOD_RUNS = 12


@settings(FUZZ, max_examples=15)
@given(rows=hostile_rows(), fold=st.booleans())
@example(rows=[{"network": "alpha", "target": "small", "job": "chat-short-v1", "model": "m",
                "outcome": "ok", "kind": "openai", "started_at": 1.79e9, **bad}
               for bad in ({"ttft_s": 9e999}, {"ttft_s": "NaN"}, {"output_tokens": "many"},
                           {"started_at": 1e18}, {"started_at": "yesterday"})], fold=True)
@example(rows=[{"network": "alpha", "target": "small", "job": "chat-short-v1", "model": "m",
                "outcome": "ok", "kind": "openai", "started_at": 1.79e9, "ttft_s": math.inf}],
         fold=False)
def test_every_stored_row_is_read_or_counted_as_ignored(
        tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]],
        fold: bool) -> None:
    db = tmp_path_factory.mktemp("rows") / "r.db"
    shutil.copy(STORE_PATH, db)
    conn = sqlite3.connect(db)
    for row in rows:
        conn.execute(f"insert into probe_results ({', '.join(row)}) "
                     f"values ({', '.join('?' * len(row))})", list(row.values()))
    conn.commit()
    conn.close()
    if fold:  # the writer folds them into the rollups and must not fail
        store = Store(db)
        store.close()
        assert store.lost == 0 and not store.rollup_errors
    code, out, err = cli(["report", "--db", str(db), "--format", "json"])
    assert code == 0, err
    report = json.loads(out)
    ignored = sum(int(m.group(1).replace(",", "")) for note in report["notes"]
                  if (m := re.match(r"([\d,]+) stored rows? ignored", note)))
    assert report["period"]["runs"] + ignored == GOOD_RUNS + len(rows)
    code, _, err = cli(["report", "--db", str(db), "--by", "network,location", "--quorum",
                        "1", "--since", "2d", "--format", "markdown"])
    assert code == 0, err
    # what the status page, its API and the exporter's SLA figures read of the same rows
    now, paths = time.time(), [db]
    with time_limit(CALL_LIMIT_S):
        status.daily_bars(paths, ["alpha"], days=3, now=now)
        status.ttft_series(paths, ["alpha"], since=now - 3600, until=now, step_s=300)
        status.network_states(paths, {"alpha": status.Plan(("small",), 60.0)}, now=now)
        read_streaks(paths, since=now - 86400)
        month_reports(paths, {"alpha": ENTERPRISE}, at=now)


@FUZZ
@given(extra=st.sampled_from(["rollup_day", "rollup_text", "verdict", "criteria",
                              "watermark", "fingerprint"]))
def test_other_tables_out_of_domain_are_ignored_and_said(
        tmp_path_factory: pytest.TempPathFactory, extra: str) -> None:
    db = tmp_path_factory.mktemp("tables") / "r.db"
    shutil.copy(STORE_PATH, db)
    conn = sqlite3.connect(db)
    if extra == "rollup_day":
        conn.execute("insert into rollup_runs values ('alpha', 'small', 'chat-short-v1', '', "
                     "1000000000000, 'ok', 5, 1, 1, 1.0, 2.0)")
    elif extra == "rollup_text":
        conn.execute("insert into rollup_runs values ('alpha', 'small', 'chat-short-v1', '', "
                     "20000, 'ok', 'many', 1, 1, 'then', 2.0)")
    elif extra in ("verdict", "fingerprint"):
        table = "equality_verdicts" if extra == "verdict" else "fingerprint_verdicts"
        columns = [r[1] for r in conn.execute(f"pragma table_info({table})")]
        row = {c: 1 for c in columns} | {"network": "alpha", "tier": "t", "model": "m",
                                         "reference": "r", "started_at": 1.79e9,
                                         "verdict": "perhaps", "prompt_set": "p",
                                         "prompt_set_digest": "d", "error": ""}
        row = {c: v for c, v in row.items() if c in columns}
        conn.execute(f"insert into {table} ({', '.join(row)}) "
                     f"values ({', '.join('?' * len(row))})", list(row.values()))
    elif extra == "criteria":
        conn.execute("insert into capacity_ladders (id, network, target, job, started_at, "
                     "stopped, criteria) values ('L1', 'alpha', 'small', 'chat-short-v1', "
                     "1.79e9, 'done', '{not json')")
    else:
        conn.execute("update rollup_state set rolled_rowid = 'lost'")
    conn.commit()
    conn.close()
    code, out, err = cli(["report", "--db", str(db), "--format", "json"])
    assert code == 0, err
    notes = json.loads(out)["notes"]
    if extra != "watermark":
        assert any("ignored" in n for n in notes), notes
    else:  # rollups it cannot trust: every row read raw, exact
        assert json.loads(out)["period"]["runs"] == GOOD_RUNS


# -- fixtures: one good store, a config, files that are not what they are given as ------------

STORE_PATH = CONFIG_PATH = TEXT_PATH = FOREIGN_PATH = Path("/nonexistent")


@pytest.fixture(scope="module", autouse=True)
def fixture_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    global STORE_PATH, CONFIG_PATH, TEXT_PATH, FOREIGN_PATH
    folder = tmp_path_factory.mktemp("fixtures")
    STORE_PATH, CONFIG_PATH = folder / "r.db", folder / "monitor.yaml"
    TEXT_PATH, FOREIGN_PATH = folder / "notes.txt", folder / "foreign.db"
    store = Store(STORE_PATH)
    now = time.time()
    for i in range(GOOD_RUNS):
        store.add(ProbeResult(network="alpha", target="small", job="chat-short-v1", model="m",
                              outcome=Outcome.OK, kind="openai", started_at=now - 7200 + i,
                              ttft_s=0.1, duration_s=1.0, tokens_per_s=50.0,
                              output_tokens=20))
    store.close()
    CONFIG_PATH.write_text(yaml.safe_dump(BASE))
    TEXT_PATH.write_text("not a store\n")
    conn = sqlite3.connect(FOREIGN_PATH)
    conn.execute("create table probe_results (a, b)")
    conn.commit()
    conn.close()
    yield
