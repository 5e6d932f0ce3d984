"""Answers in which a network says it has no free capacity right now, rather than that the
request or the protocol is wrong.

Such an answer is still the network's failure (`http_error`, or `rate_limited` for a 429): a
buyer's request was not served. It is named as a capacity answer in the run's error text,
`HTTP 409 (no capacity): ...`, so that a report reader and an on-call engineer can tell "no
GPU was free" from "the gateway is broken" without knowing each network's wording.

What each network answers, and where it was read:
- Chutes: 503 `No instances available (yet) for chute_id=...` and 429 `Infrastructure is at
  maximum capacity, try again later` (chutesai/chutes-api api/invocation/router.py `_invoke`,
  api/chute/util.py `infra_overload`).
- Theta EdgeCloud's on-demand API: 409 `No instances available - try again later` on both its
  submit route and its OpenAI-compatible `/infer_request/chat/completions` (a live validation
  of 2026-06-09: zeuslabsllc/theta-edgecloud-hermes-skill SKILL.md, "qwen3 returned 409 No
  instances available").
- AkashML: 529 `No healthy backends` and 504 `No backend available` (AkashML's API docs).
"""

from __future__ import annotations

NO_CAPACITY_MARK = "(no capacity)"  # how status_outcome names such an answer in its text

# (status, a phrase the error message holds, lower case)
NO_CAPACITY_ANSWERS = (
    (503, "no instances available"),
    (409, "no instances available"),
    (429, "infrastructure is at maximum capacity"),
    (529, "no healthy backends"),
    (504, "no backend available"),
)


def no_capacity(status: int, message: str) -> bool:
    """Whether a non-2xx answer with this status and error message says no capacity is free."""
    text = message.lower()
    return any(status == s and phrase in text for s, phrase in NO_CAPACITY_ANSWERS)
