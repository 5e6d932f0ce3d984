"""Grading by hand-made answers: what counts as the right call, which grade wins when several
things are wrong, the cells' edge cases, and that a network's text loses the key first."""

from __future__ import annotations

import pytest

from monitor.core.contract import TOOLS_V1, Cell, Grade, Param
from monitor.core.contract_grade import Reply, SeenCall, grade_param, grade_tools
from monitor.core.result import Outcome
from monitor.simulator.contract import knobs
from probes.contract import Answer
from probes.toolcalls import ToolCall

ONE = TOOLS_V1.item("one-call")
PARALLEL = TOOLS_V1.item("parallel")
CONVERT = TOOLS_V1.item("other-function")


@pytest.mark.parametrize(("item", "calls", "grade"), [
    (ONE, [("get_weather", '{"city": " paris", "unit": "celsius"}')], Grade.OK),
    (CONVERT, [("convert_currency",
                '{"amount": 250.0, "from_currency": "EUR", "to_currency": "USD"}')], Grade.OK),
    (PARALLEL, [("get_weather", '{"city": "Tokyo", "unit": "celsius"}'),
                ("get_weather", '{"city": "Paris", "unit": "celsius"}')], Grade.OK),
    (PARALLEL, [("get_weather", '{"city": "Paris", "unit": "celsius"}')],
     Grade.WRONG_ARGUMENTS),  # one of the two parallel calls
    (PARALLEL, [("get_weather", '{"city": "Paris", "unit": "celsius"}')] * 2,
     Grade.WRONG_ARGUMENTS),  # the same call twice
    (ONE, [("get_weather", '{"city": "Paris", "unit": "kelvin"}')], Grade.SCHEMA_MISMATCH),
    (ONE, [("get_weather", '{"city": "Paris", "unit": "celsius", "x": 1}')],
     Grade.SCHEMA_MISMATCH),
    (ONE, [("get_weather", '["Paris"]')], Grade.INVALID_JSON),
    (ONE, [("get_weather", "")], Grade.SCHEMA_MISMATCH),  # no arguments: {} lacks city
    (ONE, [("weather", "{not json")], Grade.UNKNOWN_NAME),  # the name is judged first
    (ONE, [("get_weather", "{not json"), ("nope", "{}")], Grade.INVALID_JSON),
    (ONE, [], Grade.NO_CALL),
    (TOOLS_V1.item("no-call"), [("get_weather", "{}")], Grade.UNEXPECTED_CALL),
    (TOOLS_V1.item("no-call"), [], Grade.OK),
])
def test_tool_grades(item: object, calls: list[tuple[str, str]], grade: Grade) -> None:
    got, detail = grade_tools(item, [SeenCall(n, a) for n, a in calls])  # type: ignore[arg-type]
    assert got is grade, detail
    assert (detail == "") == (grade in (Grade.OK, Grade.NO_CALL))


def ok(**fields: object) -> Reply:
    return Reply(ok=True, status=200, error="", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("param", "replies", "cell"), [
    (Param.MAX_TOKENS, [ok(usage_out=8, finish_reason="length")], Cell.HONOURED),
    (Param.MAX_TOKENS, [ok(usage_out=9, finish_reason="length")], Cell.IGNORED),
    (Param.MAX_TOKENS, [ok(usage_out=8, finish_reason="stop")], Cell.IGNORED),
    (Param.MAX_TOKENS, [ok(content="1, 2, 3, 4", finish_reason="length")], Cell.HONOURED),
    (Param.STOP, [ok(content="1, 2, 3, 4, 5, 6, ", finish_reason="stop")], Cell.HONOURED),
    (Param.JSON_OBJECT, [ok(content='["Paris"]')], Cell.IGNORED),
    (Param.JSON_SCHEMA, [ok(content='{"city": "Tokyo"}')], Cell.IGNORED),
    (Param.JSON_SCHEMA, [ok(content='{"city": "Tokyo", "population_millions": 37}')],
     Cell.HONOURED),
    (Param.SEED, [ok(content="a"), ok(content="a"), ok(content="b")], Cell.IGNORED),
    (Param.LOGPROBS, [ok(logprobs=5, top_logprobs=2)], Cell.IGNORED),
    (Param.INCLUDE_USAGE, [ok(usage_out=400, deltas=30, generated_chars=90)], Cell.IGNORED),
    (Param.INCLUDE_USAGE, [ok(usage_out=20, deltas=30, generated_chars=90)], Cell.IGNORED),
    (Param.INCLUDE_USAGE, [ok(usage_out=30, deltas=30, generated_chars=90)], Cell.HONOURED),
    (Param.REASONING, [ok(reasoning_chars=50, usage_out=20),
                       ok(reasoning_chars=50, usage_out=60)], Cell.HONOURED),
    (Param.REASONING, [ok(), ok()], Cell.NOT_APPLICABLE),
    (Param.STOP, [Reply(ok=False, status=400, error="HTTP 400: stop is not supported")],
     Cell.REJECTED),
    (Param.STOP, [Reply(ok=False, status=429, error="HTTP 429: slow down")], Cell.UNMEASURED),
    (Param.STOP, [Reply(ok=False, status=None, error="no response within 60s")],
     Cell.UNMEASURED),
])
def test_cells(param: Param, replies: list[Reply], cell: Cell) -> None:
    got, detail, _ = grade_param(param, replies)
    assert got is cell, detail


def test_what_the_network_wrote_loses_the_key_before_anything_keeps_it() -> None:
    key = "sk-live-0123456789abcdef"
    answer = Answer(Outcome.OK, 200, f"echo Bearer {key}", content=f"your key is {key}",
                    tool_calls=(ToolCall(0, "c", f"f{key}", f'{{"k": "{key}"}}'),))
    clean = answer.scrubbed((key,))
    assert key not in repr(clean)
    assert clean.tool_calls[0].arguments == '{"k": "***"}'


def test_an_unknown_simulator_knob_is_named() -> None:
    with pytest.raises(ValueError, match="contract 'bogus'"):
        knobs("stop_ignored, bogus")
    assert knobs(" stop_ignored ,") == {"stop_ignored"}
