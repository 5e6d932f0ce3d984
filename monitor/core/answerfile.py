"""A stored reference for quality audits: the JSON file `depin-monitor quality --save` writes.

One model's replies to one audit's items, with the suite and settings they were asked at, so
that a network can be audited against a model nobody serves beside it. The items are kept as
(family, difficulty, seed), so they are regenerated, and the replies are graded again, at
audit time: a network audited against a file is asked the file's items (not fresh ones;
docs/quality.md says what that costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monitor.core.jsonfile import read_tagged, write_tagged
from monitor.core.quality import Answer

ANSWERS_FORMAT = "depin-monitor-quality-answers/1"


@dataclass(frozen=True)
class AnswerSet:
    model: str
    suite: str
    max_tokens: int
    created_at: float
    seed: int  # the audit seed the items were drawn from
    answers: tuple[Answer, ...]  # raw replies (grades are recomputed when loaded for use)


def save_answers(path: str | Path, answers: AnswerSet) -> None:
    body = {"format": ANSWERS_FORMAT, "model": answers.model, "suite": answers.suite,
            "max_tokens": answers.max_tokens, "created_at": answers.created_at,
            "seed": answers.seed,
            "answers": [[a.index, a.family, a.difficulty, a.seed, a.outcome, a.raw]
                        for a in answers.answers]}
    write_tagged(path, body)


def load_answers(path: str | Path) -> AnswerSet:
    """ValueError with a one-line reason for a file that is not an answer set."""
    body = read_tagged(path, ANSWERS_FORMAT, "answer set", "depin-monitor quality --save")
    try:
        answers = tuple(Answer(int(i), str(f), int(d), int(s), str(o), str(raw))
                        for i, f, d, s, o, raw in body["answers"])
        return AnswerSet(model=str(body["model"]), suite=str(body["suite"]),
                         max_tokens=int(body["max_tokens"]),
                         created_at=float(body["created_at"]), seed=int(body["seed"]),
                         answers=answers)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"an answer set with a missing or malformed field ({exc})") from None
