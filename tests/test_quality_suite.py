"""The quality suite's generators: every answer checked independently of the generator's own
arithmetic (datetime and calendar for dates, str.count, sorted(), an SI table of exact
fractions, brute force over orderings, exec of the snippet with nothing but range and a
captured print), items regenerated from their seed, and the simulator's reading of each
question agrees."""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import json
import re
from fractions import Fraction

import pytest

from monitor.core.quality import QualitySettings, item_seed
from monitor.core.quality_grading import Grade, grade
from monitor.core.quality_suite import DIFFICULTIES, DIGESTS, FAMILIES, SUITE, digest, make_item
from monitor.simulator.quality import reply, run_snippet, solve

SEEDS = range(40)


def question(family: str, difficulty: int, seed: int) -> tuple[str, str]:
    item = make_item(family, difficulty, seed)
    assert item.suite == SUITE and "Answer: <value>" in item.prompt
    return item.prompt.split("\n\nWork it out", 1)[0], item.answer


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_arithmetic_replayed_sentence_by_sentence(difficulty: int) -> None:
    ops = {r"(\d+) more crates arrive": lambda v, n: v + n,
           r"(\d+) crates are shipped out": lambda v, n: v - n,
           r"the number of crates is multiplied by (\d+)": lambda v, n: v * n,
           r"the crates are split into (\d+) equal groups and only one group stays":
               lambda v, n: v / n}
    for seed in SEEDS:
        q, answer = question("arithmetic", difficulty, seed)
        value = Fraction(int(re.search(r"starts the day with (\d+)", q).group(1)))
        steps = re.findall(r"Then ([^.]*)\.", q)
        assert len(steps) == {1: 2, 2: 4, 3: 6}[difficulty]
        for step in steps:
            pattern, op = next((p, f) for p, f in ops.items() if re.fullmatch(p, step))
            value = op(value, int(re.fullmatch(pattern, step).group(1)))
            assert value.denominator == 1 and value >= 0  # whole crates only
        assert answer == str(value)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_dates_against_datetime_and_calendar(difficulty: int) -> None:
    names = list(calendar.day_name)
    for seed in SEEDS:
        q, answer = question("dates", difficulty, seed)
        if difficulty == 1:
            today, n = re.fullmatch(r"If today is (\w+), .* in (\d+) days\?", q).groups()
            assert answer == names[(names.index(today) + int(n)) % 7]
        elif difficulty == 2:
            n, day = re.fullmatch(r"What date is (\d+) days after ([\d-]+)\?", q).groups()
            assert answer == str(dt.date.fromisoformat(day) + dt.timedelta(days=int(n)))
        else:
            text = re.fullmatch(r"What day of the week was (.+)\?", q).group(1)
            day = dt.datetime.strptime(text, "%B %d, %Y").date()
            assert answer == names[calendar.weekday(day.year, day.month, day.day)]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_counting_against_str_count(difficulty: int) -> None:
    for seed in SEEDS:
        q, answer = question("counting", difficulty, seed)
        letter = re.search(r"letter '(\w)'", q).group(1)
        if difficulty == 3:
            words = q.split(": ", 1)[1].rstrip("?").split(", ")
            assert int(answer) == len([w for w in words if w.count(letter) > 1])
        else:
            text = re.search(r"(?:word|text:) '([\w ]+)'", q).group(1)
            assert int(answer) == text.count(letter)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_sorting_against_sorted(difficulty: int) -> None:
    for seed in SEEDS:
        q, answer = question("sorting", difficulty, seed)
        given = q.split(": ", 1)[1].rstrip(".").split(", ")
        if difficulty == 1:
            expected = [str(v) for v in sorted(int(x) for x in given)]
        elif difficulty == 2:
            expected = sorted(given)
        else:
            expected = sorted(w[::-1] for w in given)
        assert answer.split(", ") == expected


# Exact definitions in base units (metre, gram, second, litre): NIST SP 811, appendix B.
SI = {"kilometres": Fraction(1000), "metres": Fraction(1), "centimetres": Fraction(1, 100),
      "inches": Fraction(254, 10_000), "feet": Fraction(3048, 10_000),
      "yards": Fraction(9144, 10_000), "miles": Fraction(1_609_344, 1000),
      "kilograms": Fraction(1000), "grams": Fraction(1), "milligrams": Fraction(1, 1000),
      "days": Fraction(86_400), "hours": Fraction(3600), "minutes": Fraction(60),
      "seconds": Fraction(1), "litres": Fraction(1), "millilitres": Fraction(1, 1000)}


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_units_against_si_definitions(difficulty: int) -> None:
    for seed in SEEDS:
        q, answer = question("units", difficulty, seed)
        value, src, dst = re.fullmatch(r"Convert ([\d.]+) (\w+) to (\w+)\.", q).groups()
        assert Fraction(answer) == Fraction(value) * SI[src] / SI[dst]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_logic_has_exactly_one_ordering_and_the_answer_holds_in_it(difficulty: int) -> None:
    for seed in SEEDS:
        q, answer = question("logic", difficulty, seed)
        clues = re.findall(r"(\w+) is (taller|shorter) than (\w+)\.", q)
        names = sorted({a for a, _, _ in clues} | {b for _, _, b in clues})
        fits = [order for order in itertools.permutations(names)  # tallest first
                if all((order.index(a) < order.index(b)) == (rel == "taller")
                       for a, rel, b in clues)]
        assert len(fits) == 1, q  # the clues determine the order
        order = fits[0]
        asked = re.search(r"Who is the (.+) of the \d\?", q).group(1)
        ordinals = {"tallest": 0, "second tallest": 1, "third tallest": 2,
                    "shortest": -1, "second shortest": -2, "third shortest": -3}
        assert answer == order[ordinals[asked]]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_python_output_by_exec_and_by_the_safe_interpreter(difficulty: int) -> None:
    for seed in SEEDS:
        q, answer = question("python", difficulty, seed)
        code = re.search(r"```python\n(.*)\n```", q, re.DOTALL).group(1)
        printed: list[object] = []
        builtins = {"range": range, "print": printed.append}
        exec(code, {"__builtins__": builtins})  # our own generated code, no other builtins
        assert [str(v) for v in printed] == [answer]
        assert run_snippet(code) == answer + "\n"


def test_the_safe_interpreter_refuses_anything_else() -> None:
    for code in ("import os\nprint(1)", "print(open('x'))", "x = [1]\nprint(x)",
                 "while True:\n    pass", "print(().__class__)",
                 "for i in range(10**9):\n    x = i"):
        with pytest.raises(ValueError):
            run_snippet(code)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_extraction_answer_is_the_texts_facts_in_the_schema(difficulty: int) -> None:
    for seed in SEEDS:
        q, answer = question("extraction", difficulty, seed)
        text = q.split("Text: ", 1)[1]
        value = json.loads(answer)
        people = value["people"] if difficulty == 3 else [value]
        assert set(value) == ({"people"} if difficulty == 3 else
                              {"name", "age"} | ({"city"} if difficulty == 2 else set()))
        positions = []
        for person in people:
            assert isinstance(person["age"], int) and str(person["age"]) in text
            positions.append(text.index(person["name"]))
        assert positions == sorted(positions)  # in the order they appear
        if difficulty == 2:
            assert value["city"] in text


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_retrieval_answer_is_on_the_asked_lockers_line(difficulty: int) -> None:
    for seed in SEEDS[:10]:
        q, answer = question("retrieval", difficulty, seed)
        locker = re.search(r"code of locker (\d+)\?$", q).group(1)
        lines = [line for line in q.splitlines() if line.startswith(f"Locker {locker}:")]
        assert lines == [f"Locker {locker}: code {answer}."]
        assert q.count("\nLocker ") == {1: 40, 2: 200, 3: 800}[difficulty]


def test_an_item_is_its_family_difficulty_and_seed() -> None:
    for family in FAMILIES:
        again = [make_item(family, 2, s) for s in range(5)]
        assert again == [make_item(family, 2, s) for s in range(5)]
        assert len({i.prompt for i in again}) >= 4  # fresh items from fresh seeds
    with pytest.raises(ValueError):
        make_item("dates", 4, 1)


def test_an_audit_spreads_items_and_draws_fresh_ones_from_its_seed() -> None:
    settings = QualitySettings(items=54)
    specs = settings.specs(7)
    cells = {(f, d) for f, d, _ in specs}
    assert len(cells) == 27 and all(sum((f, d) == c for f, d, _ in specs) == 2 for c in cells)
    assert specs == settings.specs(7)
    assert {s for *_, s in specs}.isdisjoint({s for *_, s in settings.specs(8)})
    assert item_seed(7, 0) != item_seed(7, 1)


def test_the_simulator_reads_every_question_right() -> None:
    for family in FAMILIES:
        for difficulty in DIFFICULTIES:
            for seed in range(25):
                item = make_item(family, difficulty, seed)
                assert solve(item.prompt) == (family, difficulty, item.answer)
    assert solve("Write a poem about the sea.") is None


def test_the_simulator_answers_with_its_configured_skill() -> None:
    """Right with the skill table's probability (deterministic per seed, model and prompt),
    `degraded` and `skill_drop` lower; a near miss otherwise, never an unparsed reply."""
    items = QualitySettings(items=270).draw(5)

    def accuracy(model: str, skill: str = "faithful", drop: float = 0.0) -> float:
        grades = [grade(i, reply(i.prompt, model, skill, 1, drop) or "").grade for i in items]
        assert set(grades) <= {Grade.CORRECT, Grade.WRONG}
        return grades.count(Grade.CORRECT) / len(grades)

    large = accuracy("sim-llama-3.3-70b-instruct")
    assert large == accuracy("sim-llama-3.3-70b-instruct")  # the same answers every time
    assert 0.8 < large < 0.97
    assert accuracy("sim-llama-3.1-8b-instruct") < large - 0.1  # a small model: worse
    assert accuracy("sim-llama-3.3-70b-instruct", "degraded") < large - 0.08
    assert accuracy("sim-llama-3.3-70b-instruct", drop=0.3) < large - 0.2


def test_a_changed_generator_needs_a_new_suite_name() -> None:
    """Items are stored as (suite, family, difficulty, seed): the same four must always
    regenerate the same question. If this fails, a generator changed: give the suite a new
    name (quality-v2) and its digest, and keep the old one's entry."""
    assert digest() == DIGESTS[SUITE], f"the generators changed: name a new suite ({digest()})"
