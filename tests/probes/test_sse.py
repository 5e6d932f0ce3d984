"""The SSE parser: any framing and any split of a valid stream parses to the same events."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.sse import SSEEvent, SSEParser

# Data values as servers send them: any text without line breaks (those end a field).
line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                    max_size=40)
event_data = st.lists(line_text, min_size=1, max_size=3)


def encode(events: list[list[str]], newline: str, space: bool, comments: bool) -> bytes:
    out = []
    for lines in events:
        if comments:
            out.append(": keep-alive" + newline)
        for line in lines:
            out.append(("data: " if space else "data:") + line + newline)
        out.append(newline)
    return "".join(out).encode("utf-8")


def parse_in_pieces(blob: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += parser.feed(blob[last:cut])
        last = cut
    events += parser.feed(blob[last:])
    events += parser.close()
    return events


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(event_data, min_size=1, max_size=6),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    space=st.booleans(),
    comments=st.booleans(),
    data=st.data(),
)
def test_any_split_of_a_valid_stream_parses_to_the_same_events(
    events: list[list[str]], newline: str, space: bool, comments: bool, data: st.DataObject
) -> None:
    blob = encode(events, newline, space, comments)
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=12))
    # A value starting with a space loses exactly one leading space when written "data: x".
    expected = ["\n".join(line for line in lines) for lines in events]
    if not space:
        expected = ["\n".join(line[1:] if line.startswith(" ") else line for line in lines)
                    for lines in events]
    got = parse_in_pieces(blob, cuts)
    assert [e.data for e in got] == expected


def test_utf8_split_inside_a_character_decodes_correctly() -> None:
    blob = 'data: {"content":"héllo 世界 🚀"}\n\n'.encode()
    for cut in range(len(blob)):
        events = parse_in_pieces(blob, [cut])
        assert [e.data for e in events] == ['{"content":"héllo 世界 🚀"}']


def test_comments_event_names_and_done() -> None:
    parser = SSEParser()
    events = parser.feed(b": ping\n\nevent: error\ndata: {}\n\ndata: [DONE]\n\n")
    assert [(e.event, e.data) for e in events] == [("error", "{}"), ("message", "[DONE]")]
    assert parser.comments == 1


def test_truncated_event_is_never_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a": 1}\n') == []
    assert parser.pending
    assert parser.close() == []


def test_html_body_is_recognisably_not_sse() -> None:
    parser = SSEParser()
    parser.feed(b"<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n")
    assert parser.fields_seen == 0
    assert parser.unknown_lines == 2
