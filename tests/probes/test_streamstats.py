"""The decode-rate estimator with several tokens a chunk (probes/streamstats.py): tokens that
arrived with the first chunk took no measurable time and are left out, however many there were."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.streamstats import TokenStats


def stream(chunks: list[list[str]], interval: float, usage_per_chunk: bool = False,
           t0: float = 10.0) -> TokenStats:
    """Chunk j (a list of token texts) arrives at t0 + j * interval, as one delta."""
    stats = TokenStats()
    sent = 0
    for j, tokens in enumerate(chunks):
        now = t0 + j * interval
        sent += len(tokens)
        if usage_per_chunk:
            stats.usage(now, sent)
        stats.token(now, "".join(tokens))
    return stats


def test_forty_tokens_in_chunks_of_four_decode_at_fifty_per_second() -> None:
    # The example: 40 tokens in 10 chunks of 4, 80 ms apart: 36 tokens in 0.72 s.
    # The one-token-a-chunk formula, (40 - 1) / 0.72, says 54.
    chunks = [[" word"] * 4 for _ in range(10)]
    assert stream(chunks, 0.08).decode_rate(40, "usage") == pytest.approx(50.0)


def test_one_token_a_chunk_is_the_classic_formula() -> None:
    chunks = [[f" t{i}"] for i in range(20)]  # token texts of different lengths
    assert stream(chunks, 0.05).decode_rate(20, "usage") == pytest.approx(19 / 0.95)
    assert stream(chunks, 0.05).decode_rate(20, "counted") == pytest.approx(19 / 0.95)


def test_per_chunk_usage_wins_over_the_text_share() -> None:
    # vLLM with a stream interval: the first chunk is the prefill's single token, then 4 a
    # chunk. Text lengths would suggest otherwise (the first token is a long word).
    chunks = [[" Extraordinarily"]] + [[" a", " b", " c", " d"]] * 5
    with_usage = stream(chunks, 0.1, usage_per_chunk=True)
    assert with_usage.first_usage == 1
    assert with_usage.decode_rate(21, "usage") == pytest.approx(20 / 0.5)


def test_text_share_finds_a_short_first_chunk() -> None:
    # Without per-chunk usage: the first chunk's share of the text says it held one token.
    chunks = [[" xx"]] + [[" xx", " xx", " xx", " xx"]] * 5
    assert stream(chunks, 0.1).decode_rate(21, "usage") == pytest.approx(20 / 0.5)


def test_deltas_in_the_same_read_count_as_the_first_chunk() -> None:
    # llama.cpp writes its role chunk and first content chunk together; a proxy may coalesce
    # two content chunks into one read: both arrived at t_first.
    stats = TokenStats()
    stats.token(1.0, "a")
    stats.token(1.0, "b")
    for j in range(1, 5):
        stats.token(1.0 + j * 0.1, "c")
    assert stats.first_deltas == 2
    assert stats.decode_rate(6, "counted") == pytest.approx(4 / 0.4)


def test_usage_before_the_first_token_in_the_same_event_is_kept() -> None:
    # OpenAI-style chunks carry usage and the delta in one object; the probe reads usage first.
    stats = TokenStats()
    stats.usage(0.5, 0)  # vLLM's role chunk: completion_tokens 0
    stats.usage(1.0, 3)
    stats.token(1.0, "abc")
    stats.usage(1.2, 7)
    stats.token(1.2, "defg")
    assert stats.first_usage == 3
    assert stats.decode_rate(7, "usage") == pytest.approx(4 / 0.2)


def test_everything_in_one_chunk_has_no_decode_rate() -> None:
    stats = stream([["a", "b", "c"]], 0.1)
    assert stats.decode_rate(3, "usage") is None


@given(sizes=st.lists(st.integers(1, 8), min_size=2, max_size=40),
       interval=st.floats(0.001, 1.0), per_chunk_usage=st.booleans())
def test_uniform_generation_is_measured_exactly(sizes: list[int], interval: float,
                                                per_chunk_usage: bool) -> None:
    # Tokens of equal length generated at a steady rate, sent in chunks of any sizes: each
    # chunk leaves when its last token is ready. The truth is (n - first) / span.
    rate = 1 / interval
    stats = TokenStats()
    sent = 0
    for size in sizes:
        sent += size
        now = 100.0 + (sent - 1) * interval
        if per_chunk_usage:
            stats.usage(now, sent)
        stats.token(now, "tok" * size)
    assert stats.decode_rate(sent, "usage") == pytest.approx(rate, rel=1e-6)


def test_a_textless_stop_token_counted_in_usage_ends_the_span() -> None:
    # vLLM, TGI and Ollama count the stop token and send it as an empty delta with the
    # finish_reason, one decode step after the last text: 12 text tokens + EOS = 13 in usage.
    stats = stream([[f" {i}"] for i in range(12)], 0.05)
    stats.finish(10.0 + 12 * 0.05)
    assert stats.decode_rate(13, "usage") == pytest.approx(12 / 0.6)
    # Counted deltas know nothing of the stop token: the span ends at the last text.
    assert stats.decode_rate(12, "counted") == pytest.approx(11 / 0.55)


def test_fewer_tokens_than_deltas_uses_the_text_share_alone() -> None:
    # A proxy re-chunking text three characters at a time: 10 tokens in 13 deltas.
    stats = stream([["abc"]] * 13, 0.01)
    rate = stats.decode_rate(10, "usage")
    assert rate == pytest.approx((10 - 10 / 13) / 0.12)
