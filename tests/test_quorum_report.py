"""The report across locations: merged stores, `--by network,location`, and the quorum view
(down only when enough locations agree), from real store files written by the real Store."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor import cli
from monitor.analysis.quorum import quorum_from_stores, summarise
from monitor.core.result import Outcome, ProbeResult
from monitor.storage.filters import RunFilter
from monitor.storage.store import Store

SLOT = 300.0
T0 = 1_789_999_800.0  # on a 5-minute boundary
MINUTES = 120
# eu's own path fails for 20 minutes; eu and us both see akash down for 15 minutes later on;
# ap stops probing at minute 100. A second network is probed from eu only.
EU_PATH_DOWN = range(20, 40)
BOTH_DOWN = range(60, 75)
AP_STOPS = 100


def run(network: str, location: str, minute: int, outcome: Outcome) -> ProbeResult:
    offset = {"eu": 7, "us": 23, "ap": 41}[location]  # inside the minute, never on a boundary
    done = outcome is Outcome.OK
    return ProbeResult(network=network, target="small", job="chat-short-v1", model="m",
                       outcome=outcome, started_at=T0 + minute * 60 + offset,
                       ttft_s=0.3 if done else None, duration_s=1.0 if done else 0.01,
                       tokens_per_s=40.0 if done else None, output_tokens=16 if done else None,
                       location=location)


def outcome_at(location: str, minute: int) -> Outcome:
    if location == "eu" and (minute in EU_PATH_DOWN or minute in BOTH_DOWN):
        return Outcome.CONNECT_ERROR
    if location == "us" and minute in BOTH_DOWN:
        return Outcome.TIMEOUT
    return Outcome.OK


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    paths = []
    for location in ("eu", "us", "ap"):
        path = tmp_path_factory.mktemp("stores") / f"{location}.db"
        store = Store(path)
        minutes = range(AP_STOPS) if location == "ap" else range(MINUTES)
        store.add_many(run("akash", location, m, outcome_at(location, m)) for m in minutes)
        if location == "eu":
            store.add_many(run("solo", "eu", m, Outcome.OK) for m in range(MINUTES))
        store.close()
        paths.append(str(path))
    return paths


def test_only_slots_where_two_locations_agree_count_as_down(stores: list[str]) -> None:
    akash, solo = quorum_from_stores(stores, quorum=2, slot_s=SLOT)
    assert akash.network == "akash" and akash.locations == ("ap", "eu", "us")
    assert akash.judged_slots == MINUTES * 60 / SLOT  # two or more locations in every slot
    assert akash.down_slots == 3  # minutes 60-75, seen from eu and us
    assert akash.incidents == ((T0 + 60 * 60, T0 + 75 * 60),)
    assert akash.local_slots == 4  # minutes 20-40: eu alone, its path
    assert akash.uptime == pytest.approx(1 - 3 / 24)
    # one location cannot form a quorum of two: nothing is judged, nothing is claimed
    assert solo.locations == ("eu",) and solo.judged_slots == 0 and solo.uptime is None


def test_the_period_selects_the_slots(stores: list[str]) -> None:
    (akash,) = quorum_from_stores(stores, quorum=2, slot_s=SLOT, runs=RunFilter(
        since=T0 + 55 * 60, until=T0 + 80 * 60, networks=("akash",)))
    assert (akash.judged_slots, akash.down_slots, akash.local_slots) == (5, 3, 0)


def test_a_quorum_of_one_counts_every_location_s_failures(stores: list[str]) -> None:
    akash = quorum_from_stores(stores, quorum=1, slot_s=SLOT)[0]
    assert akash.down_slots == 4 + 3 and akash.local_slots == 0
    assert [end - start for start, end in akash.incidents] == [20 * 60, 15 * 60]


def test_a_location_sees_the_network_down_when_most_of_its_runs_failed() -> None:
    key = ("n", "eu", 0), ("n", "us", 0)
    judged = {key[0]: 5, key[1]: 5}
    assert summarise(judged, {key[0]: 3, key[1]: 3}, quorum=2, slot_s=SLOT)[0].down_slots == 1
    assert summarise(judged, {key[0]: 3, key[1]: 2}, quorum=2, slot_s=SLOT)[0].down_slots == 0
    half = summarise({key[0]: 4, key[1]: 4}, {key[0]: 2, key[1]: 2}, quorum=2, slot_s=SLOT)[0]
    assert half.down_slots == 0 and half.local_slots == 0  # half is not most


def test_rate_limited_runs_count_but_buyer_side_outcomes_do_not(tmp_path: Path) -> None:
    """Judged like availability: a run the network answered 429 failed; an outcome that is
    not the network's fault (auth, quota) is left out, as the report's availability does."""
    paths = []
    for location in ("eu", "us"):
        store = Store(tmp_path / f"{location}.db")
        store.add_many(run("n", location, m, Outcome.RATE_LIMITED) for m in range(5))
        store.close()
        paths.append(str(tmp_path / f"{location}.db"))
    (n,) = quorum_from_stores(paths, quorum=2, slot_s=SLOT)
    assert n.down_slots == 1
    (skipped,) = quorum_from_stores(paths, quorum=2, slot_s=SLOT,
                                    not_judged={Outcome.RATE_LIMITED.value})
    assert skipped.judged_slots == 0 and skipped.down_slots == 0


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def depin(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`depin-monitor ARGS` in this process, as a user would type it."""

    def call(*args: str) -> Result:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call



def dbs(stores: list[str]) -> list[str]:
    return [arg for path in stores for arg in ("--db", path)]


def test_report_by_location_and_the_quorum_view_from_merged_stores(
        stores: list[str], depin: Callable[..., Result]) -> None:
    proc = depin("report", *dbs(stores), "--by", "network,location", "--quorum", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # the per-location rows: eu saw 35 of 120 akash runs fail, ap none of its 100
    assert "Quorum: down only when at least 2 locations saw most runs fail in the same 5 min" \
        in out
    view = out[out.index("Quorum:"):].splitlines()
    rows = {line.split()[0]: line.split() for line in view[2:4]}
    assert rows["akash"] == ["akash", "3", "(ap,", "eu,", "us)", "24", "3", "87.500%", "4",
                             "1", "15", "min"]
    assert rows["solo"] == ["solo", "1", "(eu)", "0", "0", "-", "0", "0", "-"]
    assert view[4:] == ["  akash down 2026-09-21 15:10 UTC - 2026-09-21 15:25 UTC"]

    data = json.loads(depin("report", *dbs(stores), "--by", "network,location", "--quorum",
                            "2", "--format", "json").stdout)
    groups = {tuple(g["group"].values()): g for g in data["groups"]}
    assert groups["akash", "eu"]["runs"] == MINUTES and groups["akash", "ap"]["runs"] == AP_STOPS
    assert groups["akash", "eu"]["outcomes"]["connect_error"] == 35
    assert groups["akash", "us"]["outcomes"]["timeout"] == 15
    quorum = {q["network"]: q for q in data["quorum"]}
    assert quorum["akash"]["down_slots"] == 3 and quorum["akash"]["local_slots"] == 4
    assert quorum["akash"]["incidents"] == [{"start": T0 + 3600, "end": T0 + 4500}]


def test_the_config_s_quorum_turns_the_view_on(stores: list[str], tmp_path: Path,
                                               depin: Callable[..., Result]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("quorum: 3\nnetworks:\n  - {name: akash, base_url: http://127.0.0.1:1/v1,"
                      " model: m}\n")
    proc = depin("report", *dbs(stores), "-c", str(config), "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert "## Quorum: down only when at least 3 locations" in proc.stdout
    assert "| akash | 3 (ap, eu, us) | 20 | 0 |" in proc.stdout  # ap stopped: 20 slots of 3


@pytest.mark.parametrize(("args", "message"), [
    (["--quorum", "0"], "--quorum 0: give how many locations must agree"),
    (["--quorum", "2", "--quorum-slot", "soon"], "--quorum-slot 'soon': give a duration"),
    (["--quorum", "2", "--format", "csv"], "--quorum: shown with --format table, markdown"),
])
def test_bad_quorum_options_are_one_clear_line(stores: list[str], args: list[str],
                                                message: str,
                                                depin: Callable[..., Result]) -> None:
    proc = depin("report", *dbs(stores), *args)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
