"""Small seeded language models for the reference networks, so that model equality testing has
something true to find: each served model is a first-order Markov chain over a word
vocabulary (a start distribution per prompt, a transition matrix, an end-of-text word),
sampled at the request's temperature. A network can serve it faithfully or lie:

- `quantized`: the same model with its logits perturbed by small seeded noise, as rounding the
  weights perturbs a real model's logits (the paper's int8/nf4 distortions);
- `substituted`: another model altogether (a cheaper one served under the claimed name).

The same (model, variant) gives the same distribution on every network and every run; the
draws come from the caller's seeded generator.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

VARIANTS = ("faithful", "quantized", "substituted")
# The standard deviation `quantized` adds to every logit: chosen so that the test's power
# against it at the paper's budget (25 prompts x 10 samples, alpha 0.05) is near the paper's
# median over real distortions (77.4 %): a subtle case, not a free catch
# (benchmarks/RESULTS.md has the measured curve).
QUANTIZATION_NOISE = 1.4
_LOGIT_SCALE = 3.5  # spread of the base logits: how peaked each next-word distribution is
_END_LOGIT = -1.2  # the end-of-text word's logit offset: completions of ~10-40 words

VOCAB: tuple[str, ...] = tuple("""
the a of and to in is was for on with as by at from that this it its which were are be has
had not but or an one two three first new old long small large early late great high low
river city harbour light water stone road line village island forest market station door map
ship train bridge clock night day year season century morning winter summer people workers
farmers visitors engineers children record story history work time place way land coast
valley mountain field garden house street tower wall window built opened changed moved found
grew kept left made used began ended carried brought measured shaped followed reached turned
slowly quickly often always never still almost nearly only later again together across under
over before after during between because although while until when where then there here
""".split())
END = len(VOCAB)  # the index of the end-of-text word


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


@dataclass(frozen=True)
class MarkovModel:
    """Start logits per prompt and transition logits; `END` ends a completion."""

    name: str
    variant: str

    def _noise(self, shape: tuple[int, ...], *key: object) -> npt.NDArray[np.float64]:
        base = np.random.default_rng(_seed(self._base_name, *key)).normal(0.0, _LOGIT_SCALE,
                                                                           shape)
        if self.variant == "quantized":
            base = base + np.random.default_rng(_seed(self.name, "quantized", *key)).normal(
                0.0, QUANTIZATION_NOISE, shape)
        return base

    @property
    def _base_name(self) -> str:
        return self.name + ("/substitute" if self.variant == "substituted" else "")

    @functools.cached_property
    def transitions(self) -> npt.NDArray[np.float64]:
        logits = self._noise((END, END + 1), "transitions")
        logits[:, END] += _END_LOGIT
        return logits

    @functools.lru_cache(maxsize=64)  # noqa: B019 (a handful of long-lived models)
    def start(self, prompt: int) -> npt.NDArray[np.float64]:
        return self._noise((END,), "start", prompt)

    @functools.lru_cache(maxsize=8)  # noqa: B019
    def _cumulative(self, temperature: float) -> npt.NDArray[np.float64]:
        return _cdf(self.transitions / temperature)

    def sample(self, prompt: int, n: int, max_tokens: int, temperature: float,
               rng: np.random.Generator) -> list[list[str]]:
        """`n` completions of prompt number `prompt`, each a list of word pieces (" word")
        of at most `max_tokens` pieces."""
        if temperature <= 0:
            raise ValueError("sampling needs a temperature above 0")
        first = _cdf(self.start(prompt) / temperature)[None, :]
        cdf = self._cumulative(temperature)
        words = np.full((n, max_tokens), END, dtype=np.int64)
        alive = np.ones(n, dtype=bool)
        current = _draw(np.repeat(first, n, axis=0), rng)
        for step in range(max_tokens):
            words[alive, step] = current[alive]
            if step + 1 == max_tokens:
                break
            alive &= current != END
            if not alive.any():
                break
            nxt = np.full(n, END, dtype=np.int64)
            nxt[alive] = _draw(cdf[current[alive]], rng)
            current = nxt
        out = []
        for row in words:
            pieces = [("" if i == 0 else " ") + VOCAB[w] for i, w in enumerate(row)
                      if w != END]
            out.append(pieces[: _first_end(row)])
        return out


def _first_end(row: npt.NDArray[np.int64]) -> int:
    ends = np.flatnonzero(row == END)
    return int(ends[0]) if len(ends) else len(row)


def _cdf(logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    cdf = np.cumsum(shifted, axis=-1)
    return np.asarray(cdf / cdf[..., -1:], dtype=np.float64)


def _draw(cdf: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """One index per row of a cumulative distribution (inverse transform)."""
    u = rng.random((cdf.shape[0], 1))
    drawn: npt.NDArray[np.int64] = np.minimum((cdf < u).sum(axis=1), cdf.shape[1] - 1)
    return drawn.astype(np.int64)


@functools.lru_cache(maxsize=32)
def model_for(name: str, variant: str = "faithful") -> MarkovModel:
    if variant not in VARIANTS:
        raise ValueError(f"serves {variant!r}: expected one of {', '.join(VARIANTS)}")
    return MarkovModel(name, variant)
