"""Grading a quality item's answer: the extractor, the normaliser and the four grades.

The stated format (monitor.core.quality_suite.instruction): the final answer on the last
line, as `Answer: <value>`. The extractor reads the *last* line that starts with `Answer:`
(any case; markdown emphasis, a list marker or a heading mark before it is ignored), so
reasoning before it does not matter. The normaliser, by the item's kind:

- number: thousands separators (`1,500`), a leading `+`, trailing zeros (`12.50`) and one
  unit word after it (`360 seconds`) are accepted; the value must equal the answer exactly
  (as a decimal). `41 or 42`, `about 42` and `4.2e1` are not numbers;
- text: case, surrounding quotes, `**`, backticks and a final `.` are ignored;
- list: items split on commas (optional surrounding brackets; `and` before the last item is
  accepted), each item normalised as text; the same items in the same order, no more and no
  fewer (a truncated list is wrong);
- date: YYYY-MM-DD exactly;
- json: the rest of the line parsed as JSON (surrounding backticks and a final `.` are
  ignored),
  equal to the answer with types kept (`"34"` is not `34`, `true` is not `1`).

Grades: `correct`, `wrong` (a value was extracted and does not match), `refused` (no answer
line and the reply declines: "I can't", "I'm sorry", ...), `unparsed` (no answer line, no
refusal: an empty, cut or rambling reply). docs/quality.md has the rules with examples.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from monitor.core.quality_suite import DATE, JSON, LIST, NUMBER, TEXT, Item

# the colon: ASCII or fullwidth
_ANSWER = re.compile(r"^[\s>#*_`\-]*answer\s*[:\uff1a]\s*(.*?)\s*$", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b(?:i\s+(?:can(?:no|'|\u2019)t|cannot|won(?:'|\u2019)t|will\s+not|must\s+decline)"
    r"|i(?:\s+am|'m|\u2019m)\s+(?:sorry|unable|not\s+able)|as\s+an\s+ai\b)",
    re.IGNORECASE)
_NUMBER = re.compile(r"^[+]?(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?:\s+[^\W\d_]+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WRAP = "*_`\"' "


class Grade(enum.StrEnum):
    CORRECT = "correct"
    WRONG = "wrong"
    REFUSED = "refused"
    UNPARSED = "unparsed"


@dataclass(frozen=True, slots=True)
class Graded:
    grade: Grade
    extracted: str | None  # the value after `Answer:` (None: no answer line)


def extract(reply: str) -> str | None:
    """The value of the reply's last `Answer:` line, stripped; None without one (or with an
    empty value)."""
    for line in reversed(reply.splitlines()):
        match = _ANSWER.match(line)
        if match:
            value = match.group(1).strip()
            value = value.strip("*_").strip()
            return value or None
    return None


def normalise(kind: str, value: str) -> str | None:
    """The canonical form of an extracted value for this kind of answer; None when it is not
    one (then the answer is wrong)."""
    value = value.strip()
    if kind == NUMBER:
        return _number(value.strip(_WRAP).rstrip("."))
    if kind == TEXT:
        return _text(value)
    if kind == LIST:
        inner = value.strip(_WRAP).rstrip(".")
        if inner.startswith("[") and inner.endswith("]"):
            inner = inner[1:-1]
        parts = [p for p in re.split(r",\s*(?:and\s+)?|\s+and\s+", inner)]
        items = [_text(p) for p in parts]
        if not items or any(not i for i in items):
            return None
        return ", ".join(items)
    if kind == DATE:
        value = value.strip(_WRAP).rstrip(".")
        return value if _DATE.match(value) else None
    if kind == JSON:
        value = value[:-1] if value.endswith(("}.", "`.")) else value
        if value.startswith("`") and value.endswith("`"):
            value = value.strip("`")
            value = value[4:] if value.startswith("json") else value
        try:
            return _canonical(json.loads(value))
        except (ValueError, RecursionError):
            return None
    raise ValueError(f"unknown answer kind {kind!r}")


def _text(value: str) -> str:
    value = " ".join(value.split()).strip(_WRAP).rstrip(".").strip(_WRAP)
    return value.casefold()


def _number(value: str) -> str | None:
    match = _NUMBER.match(value)
    if not match:
        return None
    try:
        number = Decimal(match.group(1).replace(",", ""))
    except InvalidOperation:
        return None
    text = format(number.normalize(), "f")
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def _canonical(value: object) -> str:
    """JSON with sorted keys and type tags, so that 1 and true and 1.0 stay apart."""
    return json.dumps(_tagged(value), sort_keys=True, separators=(",", ":"))


def _tagged(value: object) -> object:
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["float", value]
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    return value


def matches(item: Item, value: str) -> bool:
    """Whether an extracted value is the item's answer."""
    got = normalise(item.kind, value)
    return got is not None and got == normalise(item.kind, item.answer)


def grade(item: Item, reply: str) -> Graded:
    """The grade of a reply to `item`."""
    value = extract(reply)
    if value is None:
        refused = _REFUSAL.search(reply) is not None
        return Graded(Grade.REFUSED if refused else Grade.UNPARSED, None)
    return Graded(Grade.CORRECT if matches(item, value) else Grade.WRONG, value)


__all__ = ["DATE", "JSON", "LIST", "NUMBER", "TEXT", "Grade", "Graded", "extract", "grade",
           "matches", "normalise"]
