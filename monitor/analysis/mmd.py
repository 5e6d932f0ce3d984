"""The two-sample test of model equality: MMD with the Hamming kernel and a permutation p-value.

From Gao, Liang and Guestrin (ICLR 2025, arXiv 2410.20247), section 3, written with numpy
(their package, `model-equality-testing`, needs torch and matplotlib). A sample is a
(prompt, completion) pair, the completion as L code points padded with -1
(monitor.core.equality.encode). The kernel of two completions of the same prompt is the
fraction of positions where they hold the same character, and 0 across prompts; the
statistic is the unbiased estimate of MMD^2 over same-prompt pairs:

    MMD^2 = mean k(x, x') - 2 mean k(x, y) + mean k(y, y')   (x != x', y != y')

as `mmd_hamming` in the package's model_equality_testing/tests.py computes it. Two choices
differ from the package, both so that a "differs" at level alpha happens at most alpha of
the time when the models are the same:
- labels are permuted within each prompt: both sides are sent the same prompts a fixed number
  of times, so only completions of one prompt are exchangeable under the null;
- p = (1 + #{permuted >= observed}) / (1 + permutations), not the plain fraction, which can
  be 0 and rejects slightly too often (Phipson and Smyth, 2010).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.core.equality import Sample, encode

Codes = npt.NDArray[np.int32]
Floats = npt.NDArray[np.float64]
_TIE = 1e-12  # a permuted statistic this close to the observed one counts as at least as large


@dataclass(frozen=True, slots=True)
class TestResult:
    statistic: float
    p_value: float
    permutations: int


@dataclass(frozen=True, slots=True)
class _Block:
    """The completions of one prompt from both sides: their kernel and which are the network's."""

    kernel: Floats  # (c, c)
    labels: npt.NDArray[np.bool_]  # True: the first sample's


def hamming_kernel(codes: Codes) -> Floats:
    """k(x, y) = fraction of the L positions where x and y agree (1 on the diagonal)."""
    return np.asarray((codes[:, None, :] == codes[None, :, :]).mean(axis=-1), dtype=np.float64)


def _blocks(first: Sequence[Sample], second: Sequence[Sample], chars: int) -> list[_Block]:
    by_prompt: dict[int, tuple[list[str], list[str]]] = {}
    for s in first:
        by_prompt.setdefault(s.prompt, ([], []))[0].append(s.text)
    for s in second:
        by_prompt.setdefault(s.prompt, ([], []))[1].append(s.text)
    blocks = []
    for prompt in sorted(by_prompt):
        xs, ys = by_prompt[prompt]
        codes = np.array([encode(t, chars) for t in (*xs, *ys)], dtype=np.int32)
        labels = np.array([True] * len(xs) + [False] * len(ys))
        blocks.append(_Block(hamming_kernel(codes.reshape(len(labels), chars)), labels))
    return blocks


def _pairs(blocks: Sequence[_Block]) -> tuple[int, int, int]:
    """Same-prompt pairs (x, x'), (x, y), (y, y'): the same under any within-prompt shuffle."""
    xx = xy = yy = 0
    for b in blocks:
        a = int(b.labels.sum())
        c = len(b.labels) - a
        xx += a * (a - 1)
        xy += a * c
        yy += c * (c - 1)
    return xx, xy, yy


def _statistics(blocks: Sequence[_Block], labels: Sequence[npt.NDArray[np.float64]],
                pairs: tuple[int, int, int]) -> Floats:
    """MMD^2 for each column of labels (per block: (c, B) 0/1, 1 = the first sample's)."""
    n_xx, n_xy, n_yy = pairs
    sum_xx: Floats | float = 0.0
    sum_xy: Floats | float = 0.0
    sum_yy: Floats | float = 0.0
    for block, u in zip(blocks, labels, strict=True):
        v = 1.0 - u
        ku = block.kernel @ u
        kv = block.kernel @ v
        # the diagonal (k(x, x) = 1 for each sample) is not a pair: take it out
        sum_xx = sum_xx + (u * ku).sum(axis=0) - u.sum(axis=0)
        sum_xy = sum_xy + (v * ku).sum(axis=0)
        sum_yy = sum_yy + (v * kv).sum(axis=0) - v.sum(axis=0)
    return np.asarray(sum_xx / n_xx - 2 * np.asarray(sum_xy) / n_xy + np.asarray(sum_yy) / n_yy,
                      dtype=np.float64)


def can_test(first: Sequence[Sample], second: Sequence[Sample]) -> bool:
    """Whether the statistic exists: some prompt has two completions on each side, and some
    prompt has completions on both sides."""
    return all(_pairs(_blocks(first, second, 1)))


def mmd_hamming(first: Sequence[Sample], second: Sequence[Sample], chars: int) -> float:
    """The statistic alone (ValueError when it does not exist: see `can_test`)."""
    blocks = _blocks(first, second, chars)
    pairs = _pairs(blocks)
    if not all(pairs):
        raise ValueError("not enough samples: each side needs two completions of one prompt, "
                         "and both sides completions of a common prompt")
    observed = [b.labels.astype(np.float64)[:, None] for b in blocks]
    return float(_statistics(blocks, observed, pairs)[0])


def permutation_test(first: Sequence[Sample], second: Sequence[Sample], chars: int, *,
                     permutations: int = 1000, seed: int = 0) -> TestResult:
    """MMD^2 and its permutation p-value: the labels shuffled within each prompt
    `permutations` times (seeded: the same samples give the same p-value)."""
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    blocks = _blocks(first, second, chars)
    pairs = _pairs(blocks)
    if not all(pairs):
        raise ValueError("not enough samples: each side needs two completions of one prompt, "
                         "and both sides completions of a common prompt")
    observed = float(_statistics(blocks, [b.labels.astype(np.float64)[:, None]
                                          for b in blocks], pairs)[0])
    rng = np.random.default_rng(seed)
    shuffled = [rng.permuted(np.tile(b.labels.astype(np.float64), (permutations, 1)),
                             axis=1).T for b in blocks]
    null = _statistics(blocks, shuffled, pairs)
    at_least = int(np.count_nonzero(null >= observed - _TIE))
    return TestResult(observed, (1 + at_least) / (1 + permutations), permutations)
