"""Probe kinds: one module per wire protocol, all with the signature of `probes.base.ProbeFn`.

Adding a kind is its spec in `monitor/core/kinds.py` (what the config checks), one module here
exposing `KIND = ProbeKind.of(KINDS[name], run)` and one line below.
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


__all__ = ["PROBES", "ProbeFn", "ProbeKind"]
