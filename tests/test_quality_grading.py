"""Grading quality answers: the stated format is accepted with the usual decorations, near
misses are wrong, refusals and replies without an answer line are told apart; hypothesis
for the extractor and the normaliser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.quality_grading import Grade, extract, grade, normalise
from monitor.core.quality_suite import DIFFICULTIES, FAMILIES, Item, make_item

NUMBER = make_item("units", 1, 3)  # a number answer
assert NUMBER.kind == "number"
LIST = make_item("sorting", 1, 3)
DATE = make_item("dates", 2, 3)
WORD = make_item("logic", 1, 3)
JSON = make_item("extraction", 1, 3)


def verdict(item: Item, reply: str) -> Grade:
    return grade(item, reply).grade


@pytest.mark.parametrize("reply", [
    "Answer: {a}", "answer: {a}", "ANSWER:{a}", "**Answer:** {a}", "**Answer: {a}**",
    "Answer: {a}.", "  Answer:   {a}  ", "> Answer: {a}", "- Answer: `{a}`",
    "Let me think.\nFirst ...\n\nAnswer: {a}\n", "Answer: 0\nOn second thought:\nAnswer: {a}",
])
def test_the_stated_format_is_accepted_with_its_usual_decorations(reply: str) -> None:
    for item in (NUMBER, LIST, DATE, WORD, JSON):
        assert verdict(item, reply.format(a=item.answer)) is Grade.CORRECT, (item, reply)


def test_numbers_accept_separators_trailing_zeros_and_a_unit_word() -> None:
    item = make_item("units", 1, 0)
    n = int(item.answer)
    for text in (f"{n:,}", f"{n}.0", f"+{n}", f"{n} {item.prompt.split()[3]}"):
        assert verdict(item, f"Answer: {text}") is Grade.CORRECT, text


@pytest.mark.parametrize(("item", "value"), [
    (NUMBER, "{n1}"), (NUMBER, "{n} or {n1}"), (NUMBER, "about {n}"), (NUMBER, "{n}0"),
    (NUMBER, "1,23,4"), (NUMBER, "{n}e0"),
    (LIST, "{truncated}"), (LIST, "{extra}"), (LIST, "{swapped}"),
    (DATE, "{day}"), (DATE, "{a}T00:00"),
    (WORD, "{a}s"), (WORD, "not {a}"),
    (JSON, "{age_string}"), (JSON, "{a_and_more}"), (JSON, "{{not json"),
])
def test_near_misses_are_wrong(item: Item, value: str) -> None:
    a = item.answer
    parts = [*a.split(", "), "x", "y"]  # (only a list's items are used)
    n = a if item.kind == "number" else "0"
    filled = value.format(
        a=a, n=n, n1=int(n) + 1, truncated=", ".join(parts[:-3]),
        extra=a + ", 999", swapped=", ".join([parts[1], parts[0], *parts[2:]]),
        day=a.replace("-", "/"), age_string=a.replace('"age":', '"age":"').replace(
            ',"name"', '","name"'),
        a_and_more=a[:-1] + ',"city":"X"}')
    assert verdict(item, f"Answer: {filled}") is Grade.WRONG, filled


def test_refusals_and_replies_without_an_answer_line_are_apart_from_wrong() -> None:
    assert verdict(NUMBER, "I'm sorry, but I can't help with that.") is Grade.REFUSED
    assert verdict(NUMBER, "I cannot assist with this request.") is Grade.REFUSED
    assert verdict(NUMBER, "I'm sorry.") is Grade.REFUSED
    assert verdict(NUMBER, "I\u2019m unable to answer that.") is Grade.REFUSED
    assert verdict(NUMBER, "As an AI, I won\u2019t do arithmetic.") is Grade.REFUSED
    assert verdict(NUMBER, f"The answer is {NUMBER.answer}.") is Grade.UNPARSED
    assert verdict(NUMBER, "") is Grade.UNPARSED
    assert verdict(NUMBER, "Answer:") is Grade.UNPARSED
    assert verdict(NUMBER, "Let me compute: 6 minutes is") is Grade.UNPARSED  # cut short
    # an answer line wins over polite words around it
    assert verdict(NUMBER, f"I'm sorry for the wait.\nAnswer: {NUMBER.answer}") \
        is Grade.CORRECT


POOL = [make_item(f, d, s) for f in FAMILIES for d in DIFFICULTIES for s in (0, 1, 2**62)]
items = st.sampled_from(POOL)
reasoning = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200).filter(
    lambda t: extract(t) is None)


@settings(max_examples=100, deadline=None)
@given(items, reasoning, st.sampled_from(["", "**", "`"]), st.sampled_from(["", " ", "\n"]))
def test_any_reasoning_then_the_answer_line_is_correct(item: Item, before: str, wrap: str,
                                                       tail: str) -> None:
    reply = f"{before}\nAnswer: {wrap}{item.answer}{wrap}{tail}"
    assert grade(item, reply) .grade is Grade.CORRECT


@settings(max_examples=100, deadline=None)
@given(items, st.integers(-10**6, 10**6))
def test_another_number_is_wrong(item: Item, other: int) -> None:
    if item.kind != "number" or str(other) == normalise("number", item.answer):
        return
    assert grade(item, f"Answer: {other}").grade is Grade.WRONG


@settings(max_examples=100, deadline=None)
@given(items, st.text(max_size=300))
def test_grading_never_raises_and_an_extracted_value_is_right_or_wrong(item: Item,
                                                                       reply: str) -> None:
    graded = grade(item, reply)
    assert (graded.extracted is None) == (graded.grade in (Grade.REFUSED, Grade.UNPARSED))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["number", "text", "list", "date", "json"]), st.text(max_size=80))
def test_the_normaliser_is_idempotent_where_it_accepts(kind: str, value: str) -> None:
    once = normalise(kind, value)
    if once is not None and kind in ("number", "text", "date"):
        assert normalise(kind, once) == once
