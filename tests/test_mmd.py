"""The model equality test's statistic and p-value against answers worked out by hand, against
the paper's definition written out pair by pair, and on the reference networks' samplers:
the false-positive rate on identical models and the power against each distortion (seeded)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.mmd import can_test, hamming_kernel, mmd_hamming, permutation_test
from monitor.core.equality import Sample, encode
from monitor.simulator.sampling import model_for


def test_two_identical_pairs_against_two_others() -> None:
    # k(ab, ab) = 1 within each side, k(ab, cd) = 0 across: MMD^2 = 1 - 2 * 0 + 1 = 2. Of the
    # 6 ways to split the four completions two and two, 2 give 2 and 4 give 0 - 2 * 0.5 + 0:
    # the exact permutation p-value is 2/6.
    x = [Sample(0, "ab"), Sample(0, "ab")]
    y = [Sample(0, "cd"), Sample(0, "cd")]
    assert mmd_hamming(x, y, 2) == pytest.approx(2.0)
    result = permutation_test(x, y, 2, permutations=20_000, seed=1)
    assert result.p_value == pytest.approx(1 / 3, abs=0.015)


def test_the_same_two_completions_on_both_sides() -> None:
    # within a side: k(ab, cd) = 0; across: (ab,ab) 1, (ab,cd) 0, (cd,ab) 0, (cd,cd) 1 -> 1/2
    x = [Sample(0, "ab"), Sample(0, "cd")]
    assert mmd_hamming(x, list(x), 2) == pytest.approx(0 - 2 * 0.5 + 0)


def test_kernel_counts_matching_positions_padding_included() -> None:
    # "a" and "a " over L = 3: a = a, pad != space, pad = pad -> 2 of 3 positions agree
    codes = np.array([encode("a", 3), encode("a ", 3), encode("", 3)], dtype=np.int32)
    assert encode("a", 3) == [97, -1, -1]
    assert hamming_kernel(codes) == pytest.approx(np.array(
        [[1, 2 / 3, 2 / 3], [2 / 3, 1, 1 / 3], [2 / 3, 1 / 3, 1]]))


def test_only_the_first_chars_count() -> None:
    x = [Sample(0, "same start, then one thing"), Sample(0, "same start, then one thing")]
    y = [Sample(0, "same start, and another"), Sample(0, "same start, and another")]
    assert mmd_hamming(x, y, 11) == pytest.approx(0.0)
    assert mmd_hamming(x, y, 30) > 0


def test_completions_of_different_prompts_are_never_compared() -> None:
    # the same strings under other prompt numbers: every cross-prompt pair has kernel 0
    x = [Sample(0, "aa"), Sample(0, "aa"), Sample(1, "bb"), Sample(1, "bb")]
    y = [Sample(0, "aa"), Sample(0, "aa"), Sample(1, "bb"), Sample(1, "bb")]
    assert mmd_hamming(x, y, 2) == pytest.approx(0.0)
    swapped = [Sample(1, "aa"), Sample(1, "aa"), Sample(0, "bb"), Sample(0, "bb")]
    assert mmd_hamming(x, swapped, 2) == pytest.approx(2.0)


def test_exact_p_value_by_enumerating_every_split() -> None:
    x = [Sample(0, "abc"), Sample(0, "abd"), Sample(0, "xbc")]
    y = [Sample(0, "xyz"), Sample(0, "abz"), Sample(0, "xyc")]
    pooled = x + y
    observed = mmd_hamming(x, y, 3)
    splits = [mmd_hamming([pooled[i] for i in idx],
                          [pooled[i] for i in range(6) if i not in idx], 3)
              for idx in itertools.combinations(range(6), 3)]
    exact = sum(s >= observed - 1e-12 for s in splits) / len(splits)
    assert permutation_test(x, y, 3, permutations=20_000, seed=2).p_value == pytest.approx(
        exact, abs=0.015)


def _by_definition(x: list[Sample], y: list[Sample], chars: int) -> float:
    """The paper's estimator written out pair by pair (slow, obviously right)."""
    def k(a: Sample, b: Sample) -> float:
        if a.prompt != b.prompt:
            return 0.0
        return sum(p == q for p, q in zip(encode(a.text, chars), encode(b.text, chars),
                                          strict=True)) / chars

    def mean(pairs: list[tuple[Sample, Sample]]) -> float:
        same = [(a, b) for a, b in pairs if a.prompt == b.prompt]
        return sum(k(a, b) for a, b in same) / len(same)

    xx = [(a, b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j]
    yy = [(a, b) for i, a in enumerate(y) for j, b in enumerate(y) if i != j]
    return mean(xx) - 2 * mean([(a, b) for a in x for b in y]) + mean(yy)


samples = st.lists(st.builds(Sample, st.integers(0, 2), st.text("ab c", max_size=8)),
                   min_size=2, max_size=12)


@settings(max_examples=150, deadline=None)
@given(samples, samples, st.integers(1, 10))
def test_statistic_matches_the_definition(x: list[Sample], y: list[Sample], chars: int) -> None:
    if not can_test(x, y):
        with pytest.raises(ValueError, match="not enough samples"):
            mmd_hamming(x, y, chars)
        return
    assert mmd_hamming(x, y, chars) == pytest.approx(_by_definition(x, y, chars), abs=1e-12)
    assert mmd_hamming(y, x, chars) == pytest.approx(mmd_hamming(x, y, chars), abs=1e-12)
    result = permutation_test(x, y, chars, permutations=50, seed=3)
    assert 1 / 51 <= result.p_value <= 1
    assert permutation_test(x, y, chars, permutations=50, seed=3) == result  # seeded


def test_one_completion_a_side_cannot_be_tested() -> None:
    with pytest.raises(ValueError, match="not enough samples"):
        permutation_test([Sample(0, "a")], [Sample(0, "b"), Sample(0, "c")], 1)


# -- the reference networks' samplers: calibration and power (benchmarks/equality.py has the
# -- full curves; these fixed seeds keep the claims of docs/equality.md honest) -----------------

def _draw(variant: str, prompts: int, each: int, rng: np.random.Generator) -> list[Sample]:
    model = model_for("sim-llama-3.1-8b-instruct", variant)
    return [Sample(p, "".join(pieces)) for p in range(prompts)
            for pieces in model.sample(p, each, 50, 1.0, rng)]


def _rejections(variant: str, tests: int, alpha: float, seed: int, prompts: int = 25,
                each: int = 10) -> int:
    rng = np.random.default_rng(seed)
    return sum(permutation_test(_draw("faithful", prompts, each, rng),
                                _draw(variant, prompts, each, rng), 1000, permutations=200,
                                seed=i).p_value < alpha
               for i in range(tests))


def _binomial_upper(n: int, p: float, level: float = 0.99) -> int:
    """The smallest c with P(Binomial(n, p) <= c) >= level."""
    total = 0.0
    for c in range(n + 1):
        total += math.comb(n, c) * p**c * (1 - p) ** (n - c)
        if total >= level:
            return c
    return n


def test_false_positives_on_identical_models_stay_within_alpha() -> None:
    tests, alpha = 100, 0.05
    false = _rejections("faithful", tests, alpha, seed=11, prompts=10, each=5)
    # a valid test rejects a true null at most alpha of the time: what we see must be a
    # plausible draw of Binomial(tests, alpha) (99 % upper bound: 11 of 100)
    assert false <= _binomial_upper(tests, alpha), f"{false} of {tests} at alpha {alpha}"


def test_power_against_substitution_and_quantization() -> None:
    substituted = _rejections("substituted", 20, 0.01, seed=12)
    quantized = _rejections("quantized", 20, 0.05, seed=13)
    assert substituted == 20  # another model: caught every time at 10 samples a prompt
    # the subtle distortion: power ~78 % at this budget (benchmarks/RESULTS.md)
    assert quantized >= 10, f"quantized caught {quantized} of 20"
