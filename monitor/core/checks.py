"""Output checks (validators, in Cloudprober's words): each judges a job's answer.

A check returns None when the answer passes, else a short reason. Checks never raise, and
they are written to fail for the wrong answers a real model gives: another number, a cut or
shuffled sequence, a refusal (whose reason then says so, so a safety filter is told apart
from a swapped model).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any, Protocol


class Check(Protocol):
    # The job's answer: text, or for embeddings and images the list the network returned.
    def __call__(self, output: Any) -> str | None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Exact:
    """The answer, stripped of whitespace and a trailing full stop, equals `expected`."""

    expected: str

    def __call__(self, output: str) -> str | None:
        got = output.strip().rstrip(".").strip()
        if got == self.expected:
            return None
        return _fail(f"expected {self.expected!r}, got {_clip(got)!r}", output)

    def describe(self) -> str:
        return f"exact {self.expected!r}"


@dataclass(frozen=True, slots=True)
class Regex:
    """The answer matches `pattern` somewhere (re.search; anchor it with ^ where it must)."""

    pattern: str

    def __call__(self, output: str) -> str | None:
        if re.search(self.pattern, output):
            return None
        return _fail(f"no match for /{self.pattern}/ in {_clip(output)!r}", output)

    def describe(self) -> str:
        return f"regex /{self.pattern}/"


@dataclass(frozen=True, slots=True)
class Contains:
    """The answer contains the needle (case-insensitive)."""

    needle: str

    def __call__(self, output: str) -> str | None:
        if self.needle.lower() in output.lower():
            return None
        return _fail(f"needle {self.needle!r} not found in {_clip(output)!r}", output)

    def describe(self) -> str:
        return f"contains {self.needle!r}"


# A number as written in an answer: "42", "-42", "42.5", "1,042" (thousands); not the digits of
# a word ("v42") or of a longer number.
_NUMBER = re.compile(r"(?<![\w.,])-?\d+(?:,\d{3})*(?:\.\d+)?(?!\w)")


@dataclass(frozen=True, slots=True)
class FinalNumber:
    """The last number in the answer equals `expected`: "42", "17 + 25 = 42." pass; "43",
    "42 or 43", "-42", "420", "42.5", "1,042" and an answer without a number fail."""

    expected: float

    def __call__(self, output: str) -> str | None:
        numbers = _NUMBER.findall(output)
        if not numbers:
            return _fail(f"no number in {_clip(output)!r}", output)
        if float(numbers[-1].replace(",", "")) == self.expected:
            return None
        return f"expected {self.expected:g}, got {numbers[-1]} in {_clip(output)!r}"

    def describe(self) -> str:
        return f"final number {self.expected:g}"


_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Counting:
    """The answer counts 1, 2, 3, ... without a gap, repeat or swap, up to at least `minimum`:
    one number per `tokens_per_number` tokens of the job's max_tokens, once bound to the job
    (`for_job`). The last number may be cut mid-digits (the answer stops at max_tokens)."""

    tokens_per_number: int
    minimum: int = 1

    def for_job(self, job: Any) -> Counting:
        return Counting(self.tokens_per_number,
                        max(job.max_tokens // self.tokens_per_number, 1))

    def __call__(self, output: str) -> str | None:
        numbers = _DIGITS.findall(output)
        if not numbers:
            return _fail(f"no numbers in {_clip(output)!r}", output)
        for position, got in enumerate(numbers, start=1):
            want = str(position)
            last = position == len(numbers)
            if got != want and not (last and want.startswith(got)):
                return (f"the count breaks at position {position}: expected {want}, got {got} "
                        f"({_clip(_around(output, position))!r})")
        reached = len(numbers) if numbers[-1] == str(len(numbers)) else len(numbers) - 1
        if reached < self.minimum:
            return f"the count stops at {reached}, expected at least {self.minimum}"
        return None

    def describe(self) -> str:
        return f"counts 1, 2, 3, ... to at least {self.minimum}"


@dataclass(frozen=True, slots=True)
class JsonFields:
    """The answer is a JSON object (optionally fenced in ```) whose fields equal `expected`."""

    expected: tuple[tuple[str, object], ...]

    def __call__(self, output: str) -> str | None:
        text = output.strip()
        fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.S)
        if fenced:
            text = fenced.group(1)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return _fail(f"not valid JSON: {_clip(output)!r}", output)
        if not isinstance(value, dict):
            return "JSON is not an object"
        for key, want in self.expected:
            if key not in value:
                return f"JSON field {key!r} missing"
            got = value[key]
            if isinstance(want, str) and isinstance(got, str):
                if got.strip().lower() != want.lower():
                    return f"JSON field {key!r} is {got!r}, expected {want!r}"
            elif got != want or isinstance(got, bool) != isinstance(want, bool):
                return f"JSON field {key!r} is {got!r}, expected {want!r}"
        return None

    def describe(self) -> str:
        return "json " + ", ".join(f"{k}={v!r}" for k, v in self.expected)


@dataclass(frozen=True, slots=True)
class MinLength:
    """Payloads that are not text: at least n items."""

    n: int

    def __call__(self, output: Sized) -> str | None:
        return None if len(output) >= self.n else f"output shorter than {self.n}"

    def describe(self) -> str:
        return f"at least {self.n} items"


@dataclass(frozen=True, slots=True)
class Embedding:
    """An embedding vector: at least `min_dims` finite numbers that are not all equal (a zero
    or constant vector is what a broken model or a stub answers)."""

    min_dims: int

    def __call__(self, output: Any) -> str | None:
        if not isinstance(output, list) or len(output) < self.min_dims:
            size = len(output) if isinstance(output, list) else 0
            return f"vector of {size} dimensions, expected at least {self.min_dims}"
        if not all(_finite_number(x) for x in output):
            return "vector has a value that is not a finite number"
        if max(output) == min(output):
            return f"vector is constant ({output[0]!r} in every dimension)"
        return None

    def describe(self) -> str:
        return f"vector of >= {self.min_dims} finite numbers, not constant"


@dataclass(frozen=True, slots=True)
class Images:
    """Text-to-image: at least `n` images, each with a URL, none blanked by the safety
    checker (`nsfw: true` means a black image was returned for a harmless prompt)."""

    n: int

    def __call__(self, output: Any) -> str | None:
        images = output if isinstance(output, list) else []
        if len(images) < self.n:
            return f"{len(images)} images, expected at least {self.n}"
        for i, image in enumerate(images):
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url.strip():
                return f"image {i} has no URL"
            if image.get("nsfw") is True:
                return f"image {i} was blanked by the safety checker (nsfw: true)"
        return None

    def describe(self) -> str:
        return f"at least {self.n} image URL, none flagged nsfw"


_UNHEALTHY = frozenset({"down", "unhealthy", "error", "fail", "failed", "failing", "critical",
                        "unavailable", "offline", "outage", "maintenance", "not ok", "not_ok",
                        "ko", "red"})
_HEALTH_FIELDS = ("status", "state", "health", "healthy", "ok", "up")


@dataclass(frozen=True, slots=True)
class Healthy:
    """A health answer (any 2xx) that does not say it is unhealthy: a plain body such as
    "DOWN", or a JSON object whose status/state/health is down, error, ... or whose
    healthy/ok/up is false. Any other body passes (empty included)."""

    def __call__(self, output: str) -> str | None:
        text = output.strip()
        if text.lower() in _UNHEALTHY:
            return f"the body says {_clip(text)!r}"
        try:
            value = json.loads(text) if text[:1] == "{" else None
        except (ValueError, RecursionError):
            return None
        if not isinstance(value, dict):
            return None
        for key in _HEALTH_FIELDS:
            field = value.get(key)
            if field is False or (isinstance(field, str) and field.strip().lower() in _UNHEALTHY):
                return f"the body says {key}: {json.dumps(field)}"
        return None

    def describe(self) -> str:
        return "body does not report itself down"


# Phrases that open a refusal; only used to say *why* an answer failed.
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry\b|i apologi[sz]e|i can(?:no|')t\b|i cannot\b|"
    r"i'?m (?:not able|unable)|i am (?:not able|unable)|as an ai\b|unfortunately\b)",
    re.IGNORECASE)


def _fail(reason: str, output: str) -> str:
    """The reason, marked as a refusal when the answer reads like one."""
    if _REFUSAL.match(output.replace("\u2019", "'")):
        return f"refusal: {_clip(output.strip())!r}"
    return reason


def _finite_number(value: object) -> bool:
    """A JSON number that is finite (an int of any size is; a bool is no number)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _around(text: str, position: int) -> str:
    """The text near the `position`-th number (1-based), for a readable reason."""
    match = list(_DIGITS.finditer(text))[position - 1]
    return text[max(match.start() - 20, 0):match.end() + 10]


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
