"""Output checks (validators, in Cloudprober's words): each judges a job's answer text.

A check returns None when the answer passes, else a short reason. Checks never raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sized
from dataclasses import dataclass
from typing import Protocol


class Check(Protocol):
    def __call__(self, output: str) -> str | None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Exact:
    """The answer, stripped of whitespace and a trailing full stop, equals `expected`."""

    expected: str

    def __call__(self, output: str) -> str | None:
        got = output.strip().rstrip(".").strip()
        if got == self.expected:
            return None
        return f"expected {self.expected!r}, got {_clip(got)!r}"

    def describe(self) -> str:
        return f"exact {self.expected!r}"


@dataclass(frozen=True, slots=True)
class Regex:
    """The answer matches `pattern` somewhere (re.search)."""

    pattern: str

    def __call__(self, output: str) -> str | None:
        if re.search(self.pattern, output):
            return None
        return f"no match for /{self.pattern}/ in {_clip(output)!r}"

    def describe(self) -> str:
        return f"regex /{self.pattern}/"


@dataclass(frozen=True, slots=True)
class Contains:
    """The answer contains the needle (case-insensitive)."""

    needle: str

    def __call__(self, output: str) -> str | None:
        if self.needle.lower() in output.lower():
            return None
        return f"needle {self.needle!r} not found in {_clip(output)!r}"

    def describe(self) -> str:
        return f"contains {self.needle!r}"


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
        except ValueError:
            return f"not valid JSON: {_clip(output)!r}"
        if not isinstance(value, dict):
            return "JSON is not an object"
        for key, want in self.expected:
            if key not in value:
                return f"JSON field {key!r} missing"
            got = value[key]
            if isinstance(want, str) and isinstance(got, str):
                if got.strip().lower() != want.lower():
                    return f"JSON field {key!r} is {got!r}, expected {want!r}"
            elif got != want:
                return f"JSON field {key!r} is {got!r}, expected {want!r}"
        return None

    def describe(self) -> str:
        return "json " + ", ".join(f"{k}={v!r}" for k, v in self.expected)


@dataclass(frozen=True, slots=True)
class MinLength:
    """Non-check for payloads that are not text (embeddings, images): at least n items."""

    n: int

    def __call__(self, output: Sized) -> str | None:  # type: ignore[override]
        return None if len(output) >= self.n else f"output shorter than {self.n}"

    def describe(self) -> str:
        return f"at least {self.n} items"


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
