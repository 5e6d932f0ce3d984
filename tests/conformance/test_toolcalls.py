"""Streamed tool calls from real servers' bytes (replayed): the probe reassembles each call,
its id, name and arguments, and a suite item's right answer is graded ok."""

from __future__ import annotations

import pytest

from monitor.core.contract import TOOLS_V1, tool_request
from monitor.core.contract_grade import SeenCall, grade_tools
from monitor.core.result import Outcome
from monitor.core.target import Target
from probes.contract import ask
from probes.session import SessionPool
from tests.conformance.replay import replay_server
from tests.conformance.toolcalls import FIXTURES, ToolFixture


@pytest.mark.parametrize("tf", FIXTURES, ids=[tf.fixture.name for tf in FIXTURES])
async def test_streamed_tool_calls_are_reassembled(tf: ToolFixture) -> None:
    async with replay_server(tf.fixture) as server:
        target = Target(network=tf.fixture.name, name="small", kind="openai",
                        base_url=server.url + "/v1", model="conformance")
        pool = SessionPool()
        try:
            answer = await ask(target, pool.for_target(target),
                               tool_request(TOOLS_V1.item(tf.item or "one-call"), stream=True,
                                            max_tokens=64), deadline_s=10.0)
        finally:
            await pool.close()
    assert answer.outcome is Outcome.OK, answer.error
    assert answer.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in answer.tool_calls] == list(tf.calls)
    assert [c.index for c in answer.tool_calls] == list(range(len(tf.calls)))
    if tf.ids:
        assert all(c.id for c in answer.tool_calls)
        assert len({c.id for c in answer.tool_calls}) == len(tf.calls)
    assert answer.usage_out is not None and answer.usage_out > 0
    if tf.item is not None:
        grade, detail = grade_tools(TOOLS_V1.item(tf.item),
                                    [SeenCall(c.name, c.arguments) for c in answer.tool_calls])
        assert grade.value == "ok", detail


@pytest.mark.parametrize("tf", FIXTURES, ids=[tf.fixture.name for tf in FIXTURES])
def test_fixture_names_its_source(tf: ToolFixture) -> None:
    assert tf.fixture.source and tf.fixture.writes
    raw = b"".join(w.data for w in tf.fixture.writes)
    assert raw.count(b'"tool_calls"') >= len(tf.calls) and raw.rstrip().endswith(b"[DONE]")
