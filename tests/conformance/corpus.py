"""What a conformance fixture is: a real server's response, byte for byte, with its timing.

A fixture is a list of writes, each the exact bytes a server sends at one moment (seconds after
the request arrived) and the number of generated tokens those bytes carry: the ground truth the
probe's numbers are judged against. The writes live in `streams/<name>.replay`: `#` comment
lines, then for each write a line `@ <seconds> tokens=<n>` followed by its exact bytes. Writes
at the same moment go out as one write (a server formatting several chunks into one buffer).
Each fixture names the source it was derived from: repository, file, function and commit read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from monitor.core.result import Outcome

STREAMS = Path(__file__).parent / "streams"


@dataclass(frozen=True, slots=True)
class Write:
    at: float  # seconds after the request arrived
    data: bytes
    tokens: int = 0  # generated tokens in these bytes (a textless stop token counts)


@dataclass(frozen=True, slots=True)
class Fixture:
    name: str
    kind: str  # the probe kind that speaks this protocol: openai, ollama, livepeer
    source: str  # repository, file, function (commit) the bytes were derived from
    writes: tuple[Write, ...]
    outcome: Outcome = Outcome.OK
    tokens: int | None = None  # output_tokens the probe must report
    token_source: str | None = "usage"
    text: str | None = None  # the answer the probe must reassemble (None: not checked)
    error: str = ""  # a part of the error text the probe must report
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {
        "Content-Type": "text/event-stream"})
    path: str = "/v1/chat/completions"  # where the probe must send its request
    decode_truth: bool = True  # False: the writes hold text, not whole tokens (re-chunked)

    def batches(self) -> list[Write]:
        """The writes as the server makes them: same-moment writes joined."""
        out: list[Write] = []
        for w in self.writes:
            if out and out[-1].at == w.at:
                out[-1] = Write(w.at, out[-1].data + w.data, out[-1].tokens + w.tokens)
            else:
                out.append(w)
        return out

    @property
    def generated(self) -> int:
        return sum(w.tokens for w in self.writes)

    def truth(self, sent: list[float]) -> tuple[float | None, float | None]:
        """(TTFT, decode rate) by DESIGN.md's definitions, given when each batch was really sent
        (seconds after the request arrived): TTFT is the first batch with a token; the decode
        rate counts the tokens after that batch over the time to the last batch with a token."""
        timed = [(t, b.tokens) for t, b in zip(sent, self.batches(), strict=True) if b.tokens]
        if not timed:
            return None, None
        first, last = timed[0][0], timed[-1][0]
        after = sum(n for _, n in timed[1:])
        return first, (after / (last - first) if last > first and after else None)


_HEADER = re.compile(rb"^@ (?P<at>[0-9.]+) tokens=(?P<tokens>[0-9]+)\n", re.M)


def load(name: str) -> tuple[Write, ...]:
    """The writes of `streams/<name>.replay`."""
    raw = (STREAMS / f"{name}.replay").read_bytes()
    heads = list(_HEADER.finditer(raw))
    if not heads:
        raise ValueError(f"{name}.replay: no '@ <seconds> tokens=<n>' line")
    ends = [h.start() for h in heads[1:]] + [len(raw)]
    return tuple(Write(float(h["at"]), raw[h.end():end], int(h["tokens"]))
                 for h, end in zip(heads, ends, strict=True))
