"""`depin-monitor probe --capacity` as a user types it: one ladder, its curve as a table that
fits the terminal (or JSON), and flags that cannot work refused in one line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from monitor.cli import main
from monitor.core.jobs import get_job
from tests.conftest import StartSim
from tests.test_capacity_ladder import FAST
from tests.test_cli_width import in_terminal, too_long


async def _probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command in a worker thread (it runs its own event loop), with its output."""
    code = await asyncio.to_thread(main, ["probe", "--capacity", *args])
    out, err = capsys.readouterr()
    return code, out, err


LADDER_ARGS = ("--model", "m", "--ladder", "1,2,4", "--step-duration", "1s",
               "--requests-per-stream", "1", "--job", "chat-short-v1", "--price", "0.1,0.3")


@pytest.mark.parametrize("columns", [80, 120])
async def test_the_curve_fits_the_terminal(start_sim: StartSim, columns: int) -> None:
    """In a real terminal, the table fits its width (the reason that broke a step wraps)."""
    net = await start_sim(FAST, nodes=1, slots_per_node=2, queue_per_node=0)
    shown = await asyncio.to_thread(in_terminal, columns, "probe", "--capacity", "--url",
                                    net.base_url, *LADDER_ARGS)
    assert too_long(shown, columns) == []
    words = " ".join(shown.split())
    assert "broke: availability 50.0% < 99.9%" in words  # 4 streams, 2 slots: 2 refused
    assert "sustained 2 streams; stopped: knee" in words


async def test_off_a_terminal_the_curve_is_one_line_a_step(
        start_sim: StartSim, capsys: pytest.CaptureFixture[str]) -> None:
    net = await start_sim(FAST, nodes=1, slots_per_node=2, queue_per_node=0)
    code, out, err = await _probe(capsys, "--url", net.base_url, *LADDER_ARGS)
    assert code == 0, err
    assert "climbing 127.0.0.1/adhoc with chat-short-v1: 1/2/4 streams" in err
    lines = out.splitlines()
    assert lines[1].split() == ["streams", "runs", "ok", "tok/s", "tok/s", "/stream", "TTFT",
                                "p50", "ms", "TTFT", "p95", "ms", "errors", "disc", "step"]
    rows = {line.split()[0]: line for line in lines[2:] if line.split()[0].isdigit()}
    assert set(rows) == {"1", "2", "4"}
    assert rows["1"].endswith("held") and rows["2"].endswith("held")
    assert rows["4"].endswith("broke: availability 50.0% < 99.9%")
    assert lines[-1].startswith("sustained 2 streams; stopped: knee (at 4 streams: ")
    assert "7 requests, at most $0." in lines[-1]


async def test_json_prints_the_ladder(start_sim: StartSim,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    net = await start_sim(FAST)
    code, out, err = await _probe(capsys, "--url", net.base_url, "--model", "m", "--ladder",
                                  "1,2", "--step-duration", "1s", "--requests-per-stream", "1",
                                  "--job", "chat-short-v1", "--json", "--fail-on-error")
    assert code == 0, err
    (line,) = out.splitlines()
    ladder = json.loads(line)
    assert ladder["sustained"] == 2 and ladder["stopped"] == "top" and ladder["knee"] is None
    assert [s["streams"] for s in ladder["steps"]] == [1, 2]
    assert ladder["steps"][0]["held"] is True and "results" not in ladder["steps"][0]


async def test_fail_on_error_fails_a_ladder_that_broke(start_sim: StartSim,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    net = await start_sim(FAST, nodes=1, slots_per_node=1, queue_per_node=0)
    code, _, _ = await _probe(capsys, "--url", net.base_url, "--model", "m", "--ladder", "1,2",
                              "--step-duration", "1s", "--job", "chat-short-v1",
                              "--fail-on-error")
    assert code == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--ladder", "4,2"], "--ladder '4,2': the steps must rise"),
    (["--count", "3"], "--count and --concurrency do not apply to --capacity"),
    (["--max-spend", "1"], "--max-spend needs a price"),
    (["--max-spend", "0.0001", "--price", "1,2"], "--max-spend 0.0001: one request a stream"),
    (["--price", "cheap"], "--price 'cheap': write USD per million input and output tokens"),
    (["--ladder", "1,8", "--max-concurrency", "4"],
     "--max-concurrency 4 is below the ladder's top step (8 streams)"),
    (["--ladder", "1,8", "--max-requests", "4"], "--max-requests 4: the ladder needs at least 9"),
    (["--job", "embed-v1"], "a ladder streams text"),
    (["--profile", "gold"], "--profile 'gold' is unknown"),
])
def test_capacity_flags_that_cannot_work_are_one_line_and_exit_2(
        capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code = main(["probe", "--capacity", "--url", "http://127.0.0.1:9/v1", "--model", "m", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_capacity_flags_need_capacity(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["probe", "--url", "http://127.0.0.1:9/v1", "--model", "m", "--ladder", "1,2"])
    err = capsys.readouterr().err
    assert code == 2 and "--ladder only apply to a ladder; add --capacity" in err


def test_check_shows_each_ladder_and_what_it_may_cost(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    """examples/demo.yaml climbs depin-steady every 10 minutes with json-v1, priced 0.05 in and
    0.08 out per million tokens: a request costs at most one token a prompt byte (with its
    nonce and roles) plus 16 template tokens for each of its 2 messages and the reply, and
    48 tokens out; the ladder sends at most 2 x (1 + 4 + 16 + 64) = 170 requests."""
    job = get_job("json-v1")
    prompt = len(f"[run {'0' * 12}] {job.system}systemuser{job.user}".encode())
    request = ((prompt + 16 * 3) * 0.05 + job.max_tokens * 0.08) / 1e6
    assert main(["check", "-c", "examples/demo.yaml"]) == 0
    out = capsys.readouterr().out
    assert (f"capacity depin-steady/small: 1/4/16/64 streams of json-v1 every 10m; at most 170 "
            f"requests (64 in flight), at most ${170 * request:.4f} a ladder, "
            f"${170 * request * 30 * 144:.2f} a month") in out


async def test_with_a_config_the_networks_own_ladder_climbs(
        start_sim: StartSim, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    net = await start_sim(FAST, nodes=1, slots_per_node=2, queue_per_node=4)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "sla_profiles": {"quick": {"ttft_p95_s": 0.2}},
        "networks": [
            {"name": "capped", "base_url": net.base_url, "model": "m", "sla": "quick",
             "capacity": {"job": "json-v1", "ladder": [1, 2, 3], "step_duration": "1s",
                          "requests_per_stream": 1}},
            {"name": "other", "base_url": "http://127.0.0.1:9/v1", "model": "m"}]}))
    code, out, err = await _probe(capsys, "-c", str(config), "--network", "capped", "--json")
    assert code == 0, err
    (line,) = out.splitlines()
    ladder = json.loads(line)
    assert ladder["job"] == "json-v1" and ladder["network"] == "capped"
    assert [s["streams"] for s in ladder["steps"]] == [1, 2, 3]
    assert (ladder["sustained"], ladder["knee"]) == (2, 3)  # 2 slots: the third stream waits
    assert ladder["criteria"]["ttft_p95_s"] == 0.2
