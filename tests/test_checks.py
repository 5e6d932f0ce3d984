"""Every standard job's output check: its right answers pass, the plausible wrong answers a real
model (or a swapped, broken or filtered one) gives fail, and no answer makes a check raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core import checks
from monitor.core.jobs import COUNTING, STANDARD_JOBS, get_job
from tests.conftest import quick_job

REFUSAL = "I'm sorry, I can't help with that."

COUNT_TO_128 = ", ".join(str(i) for i in range(1, 129))

# job -> (right answers, wrong answers)
CASES: dict[str, tuple[list[object], list[object]]] = {
    "chat-short-v1": (
        ["42", " 42.", "The answer is 42.", "17 + 25 = 42", "**42**", "42\n"],
        ["43", "24", "420", "4.2", "-42", "42.5", "1,042", "42 or 43", "forty-two", "",
         REFUSAL],
    ),
    "chat-long-v1": (
        [COUNTING, COUNT_TO_128 + ",", COUNT_TO_128[:-1],  # cut mid-number at max_tokens
         "Sure! " + COUNT_TO_128, "\n".join(str(i) for i in range(1, 80))],
        ["1, 2, 3, 4, 5, 6", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12",  # truncated
         COUNT_TO_128.replace("17, 18", "18, 17"),  # shuffled
         COUNT_TO_128.replace(", 40,", ","),  # a number skipped
         COUNT_TO_128.replace(", 40,", ", 40, 40,"),  # a number repeated
         "1, 2, 3, 4, 5, 6, ... " + COUNT_TO_128[-10:],  # elided
         "0, " + COUNT_TO_128, ", ".join(str(i) for i in range(2, 130)),
         ", ".join(str(i) for i in range(1, 256, 2)), REFUSAL, ""],
    ),
    "needle-8k-v1": (
        ["COBALT-HARBOR-7731", "The passphrase is COBALT-HARBOR-7731.", "cobalt-harbor-7731"],
        ["COBALT-HARBOR-7732", "COBALT-HARBOR", "AMBER-BASIN-7731", REFUSAL, ""],
    ),
    "json-v1": (
        ['{"capital": "Paris", "sum": 42}', '```json\n{"capital":"paris","sum":42}\n```',
         '{"sum": 42.0, "capital": " Paris"}'],
        ['{"capital": "Paris", "sum": 43}', '{"capital": "Lyon", "sum": 42}',
         '{"capital": "Paris", "sum": "42"}', '{"capital": "Paris"}', '["Paris", 42]',
         'Here you go: {"capital": "Paris", "sum": 42}', '{"capital": "Paris", "sum": 4',
         REFUSAL],
    ),
    "completion-short-v1": (
        [" C.", " C", "C", " C, and the next three are D, E and F."],
        [" D.", " D, not C", " c.", " C++", " Cat", " the letter D", "", REFUSAL],
    ),
    "embed-v1": (
        [[0.01 * i for i in range(64)], [1, 0, 0, 0, 0, 0, 0, 0], [-0.5, 0.25] * 512],
        [[], [0.1, 0.2, 0.3], [0.0] * 64, [0.125] * 64, [0.1] * 63 + [float("nan")],
         [0.1] * 63 + [float("inf")], [0.1] * 63 + [True], [0.1] * 63 + ["0.2"], REFUSAL,
         {"embedding": [0.1, 0.2] * 8}],
    ),
    "image-small-v1": (
        [[{"url": "/stream/abc/0.png", "seed": 1234, "nsfw": False}],
         [{"url": "https://cdn.example/x.png"}, {"url": "data:image/png;base64,iVBOR"}]],
        [[], [{"url": ""}], [{"seed": 1}], [{"url": "/x.png", "nsfw": True}], ["/x.png"],
         [{"url": None}], {"url": "/x.png"}],
    ),
    "health-v1": (
        ['{"status": "ok", "profile": "steady"}', "", "OK", "healthy", "<html>up</html>",
         '{"status": "UP", "checks": []}', '{"healthy": true}', "[]", "{not json"],
        ["DOWN", "unhealthy\n", '{"status": "down"}', '{"status": "ERROR"}',
         '{"healthy": false}', '{"ok": false, "reason": "db"}', '{"state": "maintenance"}',
         '{"health": "unavailable"}'],
    ),
}


def test_every_standard_job_has_cases() -> None:
    assert set(CASES) == {job.name for job in STANDARD_JOBS}


@pytest.mark.parametrize("name", sorted(CASES))
def test_right_answers_pass(name: str) -> None:
    check = get_job(name).check
    for answer in CASES[name][0]:
        assert check(answer) is None, (name, answer, check(answer))


@pytest.mark.parametrize("name", sorted(CASES))
def test_plausible_wrong_answers_fail(name: str) -> None:
    check = get_job(name).check
    for answer in CASES[name][1]:
        reason = check(answer)
        assert isinstance(reason, str) and reason, (name, answer)


@pytest.mark.parametrize("job", [j for j in STANDARD_JOBS if j.reference_answer],
                         ids=lambda j: j.name)
def test_the_reference_answer_the_simulator_serves_passes(job) -> None:
    assert job.check(job.reference_answer) is None


def test_a_refusal_is_named_in_the_reason() -> None:
    for name in ("chat-short-v1", "chat-long-v1", "needle-8k-v1", "json-v1",
                 "completion-short-v1"):
        reason = get_job(name).check("I\u2019m sorry, but I cannot help with that request.")
        assert reason is not None and reason.startswith("refusal:"), (name, reason)
    assert get_job("chat-short-v1").check("43").startswith("expected 42")


def test_a_broken_count_says_where() -> None:
    reason = get_job("chat-long-v1").check(COUNT_TO_128.replace("17, 18", "18, 17"))
    assert "position 17: expected 17, got 18" in reason


def test_a_short_count_says_how_far_it_got() -> None:
    assert get_job("chat-long-v1").check("1, 2, 3, 4, 5, 6") == (
        "the count stops at 6, expected at least 51")


def test_how_far_a_count_must_get_follows_the_jobs_token_budget() -> None:
    to_32 = ", ".join(str(i) for i in range(1, 33))
    assert get_job("chat-long-v1").check(to_32) is not None  # 256 tokens: at least 51
    short = quick_job("chat-long-v1", max_tokens=64)  # benchmarks run it so
    assert short.check(to_32) is None
    assert short.check("1, 2, 3, 4, 5, 6") == "the count stops at 6, expected at least 12"


def test_custom_json_check_tells_a_boolean_from_a_number() -> None:
    check = checks.JsonFields((("flag", 1),))
    assert check('{"flag": 1}') is None
    assert check('{"flag": true}') is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.just(10**400) | st.floats()
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_text_checks_never_raise(text: str) -> None:
    for job in STANDARD_JOBS:
        if job.request not in ("embedding", "image"):
            reason = job.check(text)
            assert reason is None or isinstance(reason, str)


def test_json_nested_too_deep_is_an_answer_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert get_job("json-v1").check(deep) == f"not valid JSON: {deep[:59] + '…'!r}"
    assert get_job("health-v1").check("{" + '"a":' * 50_000 + "1" + "}" * 50_000) is None


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_payload_checks_never_raise(value: object) -> None:
    for name in ("embed-v1", "image-small-v1"):
        reason = get_job(name).check(value)
        assert reason is None or isinstance(reason, str)
