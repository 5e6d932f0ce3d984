"""Token timing of one streamed response, shared by the streaming kinds (openai, ollama, livepeer).

Stamps on perf_counter as chunks arrive: first byte, first generated token, last token, the
largest gap between tokens; and turns them into the ProbeResult timing fields relative to the
moment the request was sent (docs/metrics.md's definitions of TTFT and decode rate).

The decode rate leaves out every token that arrived with the first chunk, not just one: servers
often send several tokens a chunk (stream intervals, speculative decoding, batching gateways),
and tokens that arrive at t_first took no measurable time. How many tokens that first chunk
held comes from, in order of preference (docs/metrics.md, "Decode rate"):

1. the server's own running count, when it reports usage on every chunk (vLLM's
   `continuous_usage_stats`, the Livepeer runner's cumulative `usage`);
2. one token a delta, when the token total equals the number of deltas;
3. the first chunk's share of the generated text (content, reasoning and tool-call arguments),
   applied to the token total and kept between one token a delta and what the later deltas
   leave over (no bounds when there are fewer tokens than deltas: a proxy that re-chunks text,
   as LiteLLM's mock responses do, three characters a chunk).

A stop token has no text: vLLM, TGI and Ollama count it in their usage and send it as an empty
delta with the finish_reason (or `done: true`). When the server's count exceeds the deltas and
that finishing chunk came after the last delta, it is counted as the last chunk, so the stop
token's time is in the span as its count is in the total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.core.result import TOKENS_COUNTED, TOKENS_REPORTED
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
    # What arrived at t_first (one socket read may hold several deltas), and the whole stream's
    # generated text length, for the first chunk's share of the tokens.
    first_deltas: int = 0
    first_weight: int = 0
    total_weight: int = 0
    first_usage: int | None = None  # the server's running completion count at t_first
    finished_at: float | None = None  # the chunk with the finish_reason (or done) arrived
    _pending_usage: tuple[float, int] | None = None

    def token(self, now: float, piece: str | None, weight: int | None = None) -> None:
        """One generated delta (content, reasoning or a tool call) arrived at `now`. `piece` is
        its answer text (what the output check reads); `weight` the length of everything it
        generated, reasoning and tool-call arguments included (default: len(piece), at least 1)."""
        if weight is None:
            weight = len(piece) if piece else 1
        last = self.last_token  # None until the first token, like first_token
        if last is None:
            self.first_token = now
            pending = self._pending_usage
            if pending is not None and pending[0] == now:
                self.first_usage = pending[1]
        else:
            gap = now - last
            if gap > self.max_gap:
                self.max_gap = gap
        if now == self.first_token:
            self.first_deltas += 1
            self.first_weight += weight
        self.last_token = now
        self.deltas += 1
        self.total_weight += weight
        if piece:
            self.text.append(piece)

    def usage(self, now: float, completion_tokens: int) -> None:
        """The server reported its running completion-token count at `now` (usage on a chunk).
        Only the count standing at t_first matters: it says how many tokens the first chunk
        held. A final usage summary arrives later and changes nothing here."""
        if self.first_token is None:
            self._pending_usage = (now, completion_tokens)
        elif now == self.first_token:
            self.first_usage = completion_tokens

    def finish(self, now: float) -> None:
        """The chunk that ends generation (finish_reason, `done: true`) arrived at `now`."""
        if self.finished_at is None:
            self.finished_at = now

    @property
    def output(self) -> str:
        return "".join(self.text)

    def first_chunk_tokens(self, tokens: int, source: str | None, deltas: int) -> float:
        """How many of `tokens`, sent in `deltas` deltas, arrived with the first chunk (see the
        module docstring)."""
        if source == TOKENS_COUNTED:  # `tokens` counts deltas: each delta is one token
            return float(self.first_deltas)
        if self.first_usage is not None and 0 < self.first_usage <= tokens:
            return float(self.first_usage)
        if tokens == deltas or self.total_weight <= 0:
            return float(self.first_deltas)
        share = tokens * self.first_weight / self.total_weight
        if tokens < deltas:  # re-chunked text (a proxy's character chunks): no bounds to keep
            return share
        later_deltas = deltas - self.first_deltas
        return min(max(share, float(self.first_deltas)), float(tokens - later_deltas))

    def decode_rate(self, tokens: int | None, source: str | None) -> float | None:
        """Tokens generated after the first chunk / (t_last - t_first); None when unmeasurable."""
        if not tokens or self.first_token is None or self.last_token is None:
            return None
        deltas, last = self.deltas, self.last_token
        if (source == TOKENS_REPORTED and tokens > deltas and self.finished_at is not None
                and self.finished_at > last):
            deltas, last = deltas + 1, self.finished_at  # it carried the (textless) stop token
        span = last - self.first_token
        after = tokens - self.first_chunk_tokens(tokens, source, deltas)
        if span <= 0 or after <= 0:
            return None
        return after / span

    def fields(self, clock: RequestClock, end: float, tokens: int | None,
               source: str | None) -> dict[str, Any]:
        """ProbeResult timing fields: ttfb, ttft, duration, tokens, decode rate, max gap."""
        t0 = clock.t0
        return {
            **clock.fields(),
            "ttfb_s": None if self.first_byte is None else self.first_byte - t0,
            "ttft_s": None if self.first_token is None else self.first_token - t0,
            "duration_s": end - t0,
            "output_tokens": tokens,
            "token_source": source,
            "tokens_per_s": self.decode_rate(tokens, source),
            "max_gap_s": self.max_gap if self.deltas > 1 else None,
            "bytes": self.nbytes,
        }
