"""The tool-call merger: whatever way a server splits and interleaves the fragments of its calls,
the client gets each call back whole, with its id, name and exact arguments."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.shape import ProtocolError
from probes.toolcalls import ToolCallMerger, message_calls

names = st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True)
values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=2), max_leaves=3)
calls = st.lists(st.tuples(names, st.dictionaries(st.text(max_size=6), values, max_size=4)),
                 min_size=1, max_size=4)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[list[dict[str, Any]]]]:
    """Calls, and deltas that carry them: each call's arguments cut at random points, its id
    and name on its first fragment only, the calls' fragments interleaved at random (each
    call's own in order), several fragments a delta at times."""
    wanted = [(name, json.dumps(args)) for name, args in draw(calls)]
    queues: list[list[dict[str, Any]]] = []
    for index, (name, text) in enumerate(wanted):
        cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        first: dict[str, Any] = {"index": index, "id": f"call_{index}", "type": "function",
                                 "function": {"name": name, "arguments": pieces[0]}}
        rest = [{"index": index, "function": {"arguments": p}} for p in pieces[1:]]
        queues.append([first, *rest])
    deltas: list[list[dict[str, Any]]] = []
    while any(queues):
        live = [q for q in queues if q]
        q = live[draw(st.integers(0, len(live) - 1))]
        take = draw(st.integers(1, 2))
        deltas.append([q.pop(0) for _ in range(min(take, len(q)))])
    return wanted, deltas


@settings(max_examples=40, deadline=None)
@given(streams())
def test_merged_calls_are_the_calls_sent(stream: tuple[list[tuple[str, str]],
                                                       list[list[dict[str, Any]]]]) -> None:
    wanted, deltas = stream
    merger = ToolCallMerger()
    for delta in deltas:
        merger.feed(delta)
    got = merger.calls()
    assert [(c.name, c.arguments) for c in got] == wanted
    assert [c.id for c in got] == [f"call_{i}" for i in range(len(wanted))]


def test_repeated_id_and_name_on_later_fragments_add_nothing() -> None:
    # SGLang sends null for them; LiteLLM repeats `type`; some servers repeat the name.
    merger = ToolCallMerger()
    merger.feed([{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}])
    merger.feed([{"index": 0, "id": None, "type": "function",
                  "function": {"name": None, "arguments": '{"x"'}}])
    merger.feed([{"index": 0, "id": "a", "function": {"name": "f", "arguments": ": 1}"}}])
    assert [(c.id, c.name, c.arguments) for c in merger.calls()] == [("a", "f", '{"x": 1}')]


def test_whole_calls_resent_at_index_zero_stay_apart() -> None:
    merger = ToolCallMerger()
    merger.feed([{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}])
    merger.feed([{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}])
    assert [(c.index, c.name) for c in merger.calls()] == [(0, "f"), (1, "g")]


def test_an_element_without_index_continues_its_position() -> None:
    merger = ToolCallMerger()
    merger.feed([{"id": "a", "function": {"name": "f", "arguments": "{"}}])
    merger.feed([{"function": {"arguments": "}"}}])
    assert [(c.name, c.arguments) for c in merger.calls()] == [("f", "{}")]


@pytest.mark.parametrize("deltas", [
    {"index": 0},  # not a list
    [{"index": "0", "function": {"arguments": ""}}],
    [{"index": -1, "function": {"arguments": ""}}],
    [{"index": 0, "function": {"arguments": 5}}],
    [{"index": 0, "function": {"name": ["f"]}}],
    ["call"],
])
def test_what_is_not_the_protocol_is_a_protocol_error(deltas: Any) -> None:
    with pytest.raises(ProtocolError):
        ToolCallMerger().feed(deltas)


def test_whole_message_calls_keep_their_order_and_an_object_is_flagged() -> None:
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": {"y": 2}}}]}
    got = message_calls(message)
    assert [(c.index, c.id, c.name) for c in got] == [(0, "a", "f"), (1, "b", "g")]
    assert json.loads(got[1].arguments) == {"y": 2} and got[1].arguments_object
    assert not got[0].arguments_object
    assert message_calls({"role": "assistant", "content": "hi"}) == ()
