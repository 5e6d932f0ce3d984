"""Every tool-call grade and every matrix cell, produced end to end: a simulated network that
keeps (or breaks, one knob at a time) the API contract, probed over loopback, graded."""

from __future__ import annotations

import pytest

from monitor.core.contract import Cell, ContractRun, ContractSettings, Grade, Param
from monitor.core.target import Target
from monitor.runtime.contract import check_target
from monitor.simulator.app import start_network
from monitor.simulator.profiles import PROFILES
from probes.session import SessionPool


async def contract_run(contract: str = "", **overrides: object) -> ContractRun:
    # no random faults (the datacenter profile has a 5xx in 1,000): every cell is measured
    overrides = {"p_http_5xx": 0.0, **overrides}
    profile = PROFILES["datacenter"].with_overrides(ttft_s=0.0, contract=contract, **overrides)
    net = await start_network(profile)
    target = Target(network="sim", name="small", kind="openai", base_url=net.base_url,
                    model="sim-llama-3.1-8b-instruct")
    pool = SessionPool()
    try:
        return await check_target(target, pool.for_target(target), ContractSettings())
    finally:
        await pool.close()
        await net.stop()


def grades(run: ContractRun) -> dict[tuple[str, bool], Grade | None]:
    return {(g.item, g.stream): g.grade for g in run.grades}


def cells(run: ContractRun) -> dict[Param, Cell]:
    return {c.param: c.cell for c in run.cells}


async def test_a_network_that_keeps_the_contract_is_ok_and_honoured_everywhere() -> None:
    run = await contract_run()
    assert set(grades(run).values()) == {Grade.OK}
    assert len(run.grades) == 8  # four items, streamed and not
    assert {p: c for p, c in cells(run).items() if p is not Param.REASONING} == {
        p: Cell.HONOURED for p in Param if p is not Param.REASONING}
    assert cells(run)[Param.REASONING] is Cell.NOT_APPLICABLE  # the model does not reason
    assert run.requests == ContractSettings().planned_requests() and not run.capped


@pytest.mark.parametrize(("knob", "item", "grade"), [
    ("args_not_json", "one-call", Grade.INVALID_JSON),
    ("invented_name", "other-function", Grade.UNKNOWN_NAME),
    ("missing_arg", "parallel", Grade.SCHEMA_MISMATCH),
    ("wrong_args", "one-call", Grade.WRONG_ARGUMENTS),
    ("no_call", "one-call", Grade.NO_CALL),
    ("call_always", "no-call", Grade.UNEXPECTED_CALL),
])
async def test_each_broken_tool_call_gets_its_grade_streamed_and_not(
        knob: str, item: str, grade: Grade) -> None:
    run = await contract_run(knob)
    got = grades(run)
    assert got[(item, False)] is grade and got[(item, True)] is grade
    wrong = next(g for g in run.grades if g.item == item)
    assert wrong.detail or grade in (Grade.NO_CALL,)


async def test_each_broken_parameter_is_ignored_or_rejected() -> None:
    run = await contract_run("stop_ignored,max_tokens_overrun,json_schema_ignored,"
                             "json_object_ignored,seed_ignored,logprobs_rejected,"
                             "reasoning_ignored", send_usage=False)
    got = cells(run)
    for param in (Param.STOP, Param.MAX_TOKENS, Param.JSON_SCHEMA, Param.JSON_OBJECT,
                  Param.SEED, Param.INCLUDE_USAGE, Param.REASONING):
        assert got[param] is Cell.IGNORED, param
    assert got[Param.LOGPROBS] is Cell.REJECTED
    rejected = next(c for c in run.cells if c.param is Param.LOGPROBS)
    assert "HTTP 400" in rejected.detail and "logprobs is not supported" in rejected.detail
    seed = next(c for c in run.cells if c.param is Param.SEED)
    assert seed.value is not None and seed.value < 1.0


async def test_a_reasoning_model_honours_reasoning_effort_and_logprobs_can_be_dropped() -> None:
    got = cells(await contract_run("reasoning,logprobs_ignored"))
    assert got[Param.REASONING] is Cell.HONOURED
    assert got[Param.LOGPROBS] is Cell.IGNORED


async def test_a_down_network_leaves_cells_unmeasured_and_items_ungraded() -> None:
    run = await contract_run(p_http_5xx=1.0)
    assert set(cells(run).values()) == {Cell.UNMEASURED}
    assert all(g.grade is None and g.outcome == "http_error" for g in run.grades)


async def test_the_request_cap_stops_the_run() -> None:
    profile = PROFILES["datacenter"].with_overrides(ttft_s=0.0, p_http_5xx=0.0)
    net = await start_network(profile)
    target = Target(network="sim", name="small", kind="openai", base_url=net.base_url,
                    model="m")
    pool = SessionPool()
    try:
        run = await check_target(target, pool.for_target(target),
                                 ContractSettings(max_requests=5))
    finally:
        await pool.close()
        await net.stop()
    assert run.requests == 5 and "request cap (5)" in run.capped
    assert len(run.grades) == 5
    assert set(cells(run).values()) == {Cell.UNMEASURED}
