"""Token timing of one streamed response, shared by the streaming kinds (openai, ollama, livepeer).

Stamps on perf_counter as chunks arrive: first byte, first generated token, last token, the
largest gap between tokens; and turns them into the ProbeResult timing fields relative to the
moment the request was sent (DESIGN.md's definitions of TTFT and decode rate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probes.session import RequestClock


@dataclass(slots=True)
class TokenStats:
    first_byte: float | None = None
    first_token: float | None = None
    last_token: float | None = None
    deltas: int = 0
    max_gap: float = 0.0
    nbytes: int = 0
    text: list[str] = field(default_factory=list)

    def token(self, now: float, piece: str | None) -> None:
        """One generated chunk (content, reasoning or a tool call) arrived at `now`."""
        if self.first_token is None:
            self.first_token = now
        else:
            gap = now - self.last_token  # type: ignore[operator]
            if gap > self.max_gap:
                self.max_gap = gap
        self.last_token = now
        self.deltas += 1
        if piece:
            self.text.append(piece)

    @property
    def output(self) -> str:
        return "".join(self.text)

    def fields(self, clock: RequestClock, end: float, tokens: int | None,
               source: str | None) -> dict[str, Any]:
        """ProbeResult timing fields: ttfb, ttft, duration, tokens, decode rate, max gap."""
        t0 = clock.t0
        rate = None
        if tokens and tokens > 1 and self.first_token is not None and self.last_token is not None:
            span = self.last_token - self.first_token
            if span > 0:
                rate = (tokens - 1) / span
        return {
            **clock.fields(),
            "ttfb_s": None if self.first_byte is None else self.first_byte - t0,
            "ttft_s": None if self.first_token is None else self.first_token - t0,
            "duration_s": end - t0,
            "output_tokens": tokens,
            "token_source": source,
            "tokens_per_s": rate,
            "max_gap_s": self.max_gap if self.deltas > 1 else None,
            "bytes": self.nbytes,
        }
