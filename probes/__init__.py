"""Probe kinds: one module per wire protocol, all with the signature of `probes.base.ProbeFn`.

Adding a kind is one module exposing `KIND = ProbeKind(...)` and one line below.
"""

from __future__ import annotations

from probes import http, jobapi, livepeer, ollama, openai, theta
from probes.base import ProbeFn, ProbeKind

PROBES: dict[str, ProbeKind] = {
    kind.name: kind
    for kind in (
        openai.KIND,
        ollama.KIND,
        livepeer.KIND,
        jobapi.KIND,
        http.KIND,
        theta.KIND,
    )
}


def get_kind(name: str) -> ProbeKind:
    """The probe kind registered under `name`; KeyError lists the known kinds."""
    try:
        return PROBES[name]
    except KeyError:
        known = ", ".join(sorted(PROBES))
        raise KeyError(f"unknown probe kind {name!r} (known: {known})") from None


__all__ = ["PROBES", "ProbeFn", "ProbeKind", "get_kind"]
