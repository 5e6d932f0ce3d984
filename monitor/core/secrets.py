"""The one scrubber: every text a network writes goes through `scrub` (or `cut`, which scrubs,
cuts, then scrubs again) before it is stored, logged, exported or shown.

`scrub(text, secrets)` removes, for each secret (an API key, a TLS key's password):

- every substring of 8 (`MIN_FRAGMENT`) or more characters of the secret, wherever it stands:
  the whole key, and what is left of it where some earlier cut (the network's, a probe's)
  fell inside it;
- the same in the forms servers echo a key in: JSON-escaped (`\\/`), percent-encoded
  (`%2B`, `%2b`, with or without `/` kept, `+` for space);
- a secret of 4 to 7 characters where it appears whole;
- any `Bearer <token>` (also `Bearer+` and `Bearer%20`), and a URL's `user:password@`.

Each removed stretch becomes `***`. A key split across stream chunks is only whole in the
joined text, so the joined text is what gets scrubbed (a fragment of 8+ characters in one
chunk is removed all the same). What it cannot see: a key re-encoded some other way (base64
of the key, hex of its bytes, a key spelt backwards) or cut to under 8 characters
(docs/security.md).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

MIN_FRAGMENT = 8
"""The shortest stretch of a secret that is removed wherever it appears."""
ANCHOR = 4
"""Every MIN_FRAGMENT-long piece of a secret holds one of its aligned ANCHOR-long pieces."""
assert MIN_FRAGMENT >= 2 * ANCHOR - 1
MIN_SECRET = 4
"""Shorter secrets are not scrubbed at all (they would match ordinary words)."""
MASK = "***"
CUT_MARK = "…"

T = TypeVar("T")


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` without any secret, any 8+ character fragment of one, in any known encoding,
    nor any Bearer token or URL credentials; each removed stretch is `***`."""
    forms = _all_forms(tuple(s for s in secrets if s and len(s) >= MIN_SECRET))
    if not _may_hold(text, forms):  # the common case: nothing to remove
        return text
    while True:  # removing a stretch joins its neighbours: repeat until nothing changes
        scrubbed = _scrub_once(text, forms)
        if scrubbed == text:
            return text
        text = scrubbed


def cut(text: str, limit: int, secrets: Iterable[str | None], *, one_line: bool = False) -> str:
    """`text` scrubbed, then cut to at most `limit` characters (ending in `…` when cut), then
    scrubbed again; `one_line` first folds every run of whitespace into one space."""
    secrets = tuple(secrets)
    if one_line:
        text = " ".join(text.split())
    text = scrub(text, secrets)
    if len(text) <= limit:
        return text
    mark = CUT_MARK if limit >= len(CUT_MARK) else ""
    keep = limit - len(mark)
    while True:  # a mask can be longer than what it hides (`Bearer x`): then keep less
        out = scrub(text[:keep] + mark, secrets)
        if len(out) <= limit or keep == 0:
            return out
        keep -= 1


def scrub_value(value: T, secrets: Iterable[str | None]) -> T:
    """`value` (JSON-like: str, list, tuple, dict, scalars) with every string in it, keys
    included, scrubbed."""
    return _walk(value, tuple(secrets))  # type: ignore[no-any-return]


def _walk(value: Any, secrets: tuple[str | None, ...]) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {_walk(k, secrets): _walk(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if set(map(type, value)) <= _SCALARS:  # a vector of numbers: nothing to scrub
            return value
        return type(value)(_walk(v, secrets) for v in value)
    return value


_SCALARS = {int, float, bool, type(None)}


_BEARER = re.compile(r"(Bearer(?:\s|\+|%20)+)[A-Za-z0-9._\-~+/=%]+", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"://[^/@\s]+@")  # user:password@ in a (proxy) URL


def _scrub_once(text: str, forms: _Forms) -> str:
    spans: list[tuple[int, int]] = []
    if forms.runs is not None:
        # Only inside a run of the secrets' own characters can a fragment stand: find the
        # runs in C, then look each 8-character window of a run up in the set of fragments.
        grams, n = forms.grams, MIN_FRAGMENT
        for run in forms.runs.finditer(text):
            start, end = run.span()
            spans += [(i, i + n) for i in range(start, end - n + 1) if text[i:i + n] in grams]
    for whole in forms.wholes:
        start = text.find(whole)
        while start >= 0:
            spans.append((start, start + len(whole)))
            start = text.find(whole, start + 1)
    if spans:
        text = _mask(text, spans)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _URL_CREDENTIALS.sub("://" + MASK + "@", text)


def _may_hold(text: str, forms: _Forms) -> bool:
    """Whether `text` may hold something to remove: a cheap test that is never wrong when it
    says no (substring searches in C, no regular expression)."""
    return any(a in text for a in forms.anchors) or any(w in text for w in forms.wholes) \
        or "://" in text or "bearer" in text.lower()


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    """Replace the union of `spans` by one MASK per connected stretch."""
    spans.sort()
    out: list[str] = []
    at = 0
    start, end = spans[0]
    for s, e in spans[1:]:
        if s <= end:
            end = max(end, e)
            continue
        out += [text[at:start], MASK]
        at, start, end = end, s, e
    out += [text[at:start], MASK, text[end:]]
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Forms:
    grams: frozenset[str]  # every MIN_FRAGMENT-long piece of every form of the long secrets
    runs: re.Pattern[str] | None  # runs of MIN_FRAGMENT+ characters that the forms use
    wholes: tuple[str, ...]  # every form of the short secrets (removed only whole)
    anchors: tuple[str, ...]  # the pieces of ANCHOR characters every fragment holds one of


@functools.lru_cache(maxsize=64)
def _all_forms(secrets: tuple[str, ...]) -> _Forms:
    grams: set[str] = set()
    wholes: set[str] = set()
    anchors: set[str] = set()
    for secret in secrets:
        for form in _forms(secret):
            if len(secret) < MIN_FRAGMENT:
                wholes.add(form)
                continue
            grams.update(form[i:i + MIN_FRAGMENT] for i in range(len(form) - MIN_FRAGMENT + 1))
            # Any MIN_FRAGMENT characters of the form hold one of its ANCHOR-long pieces at
            # a multiple of ANCHOR (as MIN_FRAGMENT >= 2 * ANCHOR - 1)
            anchors.update(form[i:i + ANCHOR] for i in range(0, len(form) - ANCHOR + 1, ANCHOR))
    alphabet = sorted({c for gram in grams for c in gram})
    runs = f"[{''.join(map(re.escape, alphabet))}]{{{MIN_FRAGMENT},}}" if grams else None
    return _Forms(frozenset(grams), re.compile(runs) if runs else None, tuple(wholes),
                  tuple(sorted(anchors)))


def _forms(secret: str) -> set[str]:
    """The secret as servers echo it: itself, JSON-escaped, percent-encoded (both cases of
    hex digits, `/` kept or not, `+` for space)."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret)[1:-1].replace("/", "\\/")}
    for encoded in (quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret)):
        forms.add(encoded)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    return forms
