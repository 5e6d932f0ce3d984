"""First-token models with greedy decoding and log-probabilities, for the fingerprint's
border inputs: each served model gives every short prompt a fixed vector of next-token logits
(seeded from the model and the prompt). A request adds small jitter to them, as batched real
servers do (the numerics of a kernel depend on the batch a request lands in), then decodes:
at temperature 0 the argmax, so the first token is stable on most prompts and flips only on
near-ties; above 0 a draw from the softmax.

- `quantized`: the same model with seeded noise added to every logit, so clear winners stay
  and near-ties fall differently (the weights' rounding);
- `substituted`: another model altogether.

Log-probabilities are those of the jittered logits (what the server computed for that
request), top-k sorted by rank, as vLLM returns them.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Candidate first tokens (word pieces as a tokenizer would return them, leading space kept).
TOKENS: tuple[str, ...] = tuple(
    ["The", "A", "I", "It", "In", "This", "Yes", "No", "Here", "Sure", "Hello", "Well", "One",
     "There", "We", "You", "What", "Of", "As", "If", "To", "And", "So", "My", "Oh", "Ok",
     "Let", "Thank", "Good", "That", "Not", "Maybe"]
    + [" " + w for w in ("the", "a", "is", "of", "and", "to", "in", "it", "word", "name",
                         "yes", "no", "I", "you", "this", "that", "one", "two", "an", "for",
                         "on", "with", "be", "not", "as", "or", "by", "at", "we", "my",
                         "so", "if")])
LOGIT_SCALE = 2.0  # spread of a prompt's logits: how clear its winner usually is
# Per-request jitter (standard deviation, in logits): with the scale above about one prompt in
# nine has a top-2 gap small enough to flip at least one time in ten.
TIE_NOISE = 0.05
QUANTIZATION_NOISE = 0.1  # what `quantized` adds to every logit: reorders near-ties only


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


@dataclass(frozen=True)
class FirstToken:
    """What one request decoded: the first token, and the top-k (token, logprob) by rank."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class FirstTokenModel:
    name: str
    variant: str = "faithful"

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (a handful of long-lived models)
    def logits(self, prompt: str) -> npt.NDArray[np.float64]:
        base = self.name + ("/substitute" if self.variant == "substituted" else "")
        logits = np.random.default_rng(_seed(base, "first", prompt)).normal(
            0.0, LOGIT_SCALE, len(TOKENS))
        if self.variant == "quantized":
            logits = logits + np.random.default_rng(_seed(self.name, "quantized", prompt)
                                                    ).normal(0.0, QUANTIZATION_NOISE,
                                                             len(TOKENS))
        return logits

    def decode(self, prompt: str, temperature: float, rng: np.random.Generator,
               top_k: int = 0) -> FirstToken:
        """One request's first token: the jittered logits' argmax at temperature 0, a draw
        from their softmax above it; with the top_k (token, logprob) pairs by rank."""
        logits = self.logits(prompt) + rng.normal(0.0, TIE_NOISE, len(TOKENS))
        shifted = logits - logits.max()
        logprobs = shifted - math.log(float(np.exp(shifted).sum()))
        if temperature <= 0:
            chosen = int(np.argmax(logits))
        else:
            p = np.exp(logprobs / temperature)
            chosen = int(rng.choice(len(TOKENS), p=p / p.sum()))
        order = np.argsort(-logprobs, kind="stable")[:top_k]
        return FirstToken(TOKENS[chosen], float(logprobs[chosen]),
                          tuple((TOKENS[i], float(logprobs[i])) for i in order))

    def greedy(self, prompt: str, n: int, rng: np.random.Generator, top_k: int = 0
               ) -> list[FirstToken]:
        """`n` requests' first tokens at temperature 0 at once (as `decode`, vectorized: for
        benchmarks and tests that emulate many requests without a server)."""
        logits = self.logits(prompt) + rng.normal(0.0, TIE_NOISE, (n, len(TOKENS)))
        logprobs = logits - logits.max(axis=1, keepdims=True)
        logprobs -= np.log(np.exp(logprobs).sum(axis=1, keepdims=True))
        chosen = logits.argmax(axis=1)
        order = np.argsort(-logprobs, axis=1, kind="stable")[:, :top_k]
        return [FirstToken(TOKENS[c], float(row[c]),
                           tuple((TOKENS[i], float(row[i])) for i in ranks))
                for c, row, ranks in zip(chosen, logprobs, order, strict=True)]


@functools.lru_cache(maxsize=32)
def first_token_model(name: str, variant: str = "faithful") -> FirstTokenModel:
    return FirstTokenModel(name, variant)


def logprobs_content(pieces: list[str], first: FirstToken) -> list[dict[str, object]]:
    """`choices[0].logprobs.content` in OpenAI's (and vLLM's) wire format: one entry per
    output token, `{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob",
    "bytes"}]}` (vllm/entrypoints/openai/protocol.py: ChatCompletionLogProbsContent). Tokens
    after the first are the simulator's filler: certain (logprob 0)."""
    def entry(token: str, logprob: float) -> dict[str, object]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    out: list[dict[str, object]] = []
    for i, piece in enumerate(pieces):
        if i == 0:
            item = entry(first.token, first.logprob)
            item["top_logprobs"] = [entry(t, lp) for t, lp in first.top]
        else:
            item = entry(piece, 0.0)
            item["top_logprobs"] = [entry(piece, 0.0)] if first.top else []
        out.append(item)
    return out
