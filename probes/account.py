"""Answers about the buyer's account rather than the network: a key the network refuses
(`auth_error`) and an account out of credits or quota (`quota_exhausted`).

What the networks document, and where it was read:
- 401 / 403: a missing, bad or revoked key, or a key without the permission. Every
  OpenAI-compatible server answers 401 to a bad key (Chutes: chutesai/chutes-api
  api/api_key/util.py and api/invocation/router.py "Authentication required."); OpenRouter's
  error codes: 401 invalid credentials, 403 forbidden (insufficient permissions, guardrail or
  moderation block).
- 402 Payment Required: Chutes (chutesai/chutes-api api/invocation/router.py `_invoke`:
  `{"detail": {"message": "Quota exceeded and account balance is $...", ...}}` once the daily
  quota is spent and the balance is empty), AkashML (its docs: 402 for credits), OpenRouter
  (openrouter.ai/docs errors: "Your account or API key has insufficient credits").
- 429 with OpenAI's billing error: `{"error": {"type": "insufficient_quota", "code": ...}}`,
  the code naming which limit (`insufficient_quota`, `credit_balance_exhausted`,
  `organization_spend_limit_exceeded`, ...): a 429 that waiting does not fix (OpenAI's error
  codes guide). io.net documents a daily token quota per model but not the body it answers
  with: its quota 429s stay `rate_limited` unless they carry OpenAI's billing type.
- Inside a 200 stream: OpenRouter's error event carries `error.code`, the HTTP status it would
  have answered with (openrouter.ai/docs errors): 401, 402 and 403 there mean the same.

Both functions read any input without raising: an unexpected shape is simply not an account
answer.
"""

from __future__ import annotations

from typing import Any

from monitor.core.result import Outcome
from probes.shape import parse_json

AUTH_STATUSES = frozenset({401, 403})
QUOTA_STATUSES = frozenset({402})
# OpenAI's billing errors: `type` is insufficient_quota, `code` the limit that was hit.
BILLING_ERRORS = frozenset({
    "insufficient_quota", "credit_balance_exhausted", "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded", "organization_usage_limit_exceeded",
})


def buyer_side_status(status: int, body: bytes | str) -> Outcome | None:
    """auth_error or quota_exhausted when a non-2xx answer is about the buyer's account, else
    None (the answer is the network's: rate_limited or http_error)."""
    if status in AUTH_STATUSES:
        return Outcome.AUTH_ERROR
    if status in QUOTA_STATUSES:
        return Outcome.QUOTA_EXHAUSTED
    if status == 429 and any(_is_billing(e) for e in _error_objects(body)):
        return Outcome.QUOTA_EXHAUSTED
    return None


def buyer_side_error(error: Any) -> Outcome | None:
    """The same for an error object delivered inside a 2xx answer or stream (the value of its
    `error` field): OpenRouter's `code` = the HTTP status, or OpenAI's billing type."""
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        if code in AUTH_STATUSES:
            return Outcome.AUTH_ERROR
        if code in QUOTA_STATUSES:
            return Outcome.QUOTA_EXHAUSTED
    return Outcome.QUOTA_EXHAUSTED if _is_billing(error) else None


def error_outcome(error: Any) -> Outcome:
    """The outcome of an error object inside a 2xx answer or stream: `http_error` unless it
    is about the buyer's account (buyer_side_error)."""
    return buyer_side_error(error) or Outcome.HTTP_ERROR


def _error_objects(body: bytes | str) -> list[dict[str, Any]]:
    """The objects of an error body that may name the error: OpenAI's `error`, FastAPI's
    `detail`, or the document itself."""
    try:
        value = parse_json(body)
    except ValueError:
        return []
    if not isinstance(value, dict):
        return []
    return [value, *(v for v in (value.get("error"), value.get("detail")) if isinstance(v, dict))]


def _is_billing(error: dict[str, Any]) -> bool:
    return any(isinstance(error.get(k), str) and error[k] in BILLING_ERRORS
               for k in ("type", "code"))
