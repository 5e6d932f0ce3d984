"""The quality audit's task suite `quality-v1`: item generators whose answers code can check
exactly. An item is a pure function of (family, difficulty, seed): the same three always give
the same prompt and answer, so any stored item can be regenerated and every audit can draw
fresh ones. Changing what any generator produces for a given seed is a new suite version
(a new SUITE name), recorded with every item.

Families (docs/quality.md): multi-step arithmetic word problems, date and weekday arithmetic,
counting, sorting and string transforms, unit conversions, ordering puzzles, the output of
short Python snippets, extraction into a JSON object, retrieval from a long context.
Difficulty 1..3 adds steps, length or indirection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

_T = TypeVar("_T", int, str)

SUITE = "quality-v1"
# What each suite's generators produce (digest()): tests/test_quality_suite.py holds the
# current generators to their suite's entry, so a changed generator needs a new SUITE name.
DIGESTS = {"quality-v1": "e61be9ffe5bb4c12"}
DIFFICULTIES = (1, 2, 3)

# How an answer is compared (monitor.core.quality_grading): a number, one word or name, an
# ordered comma-separated list, a YYYY-MM-DD date, or a JSON object.
NUMBER, TEXT, LIST, DATE, JSON = "number", "text", "list", "date", "json"

FORMAT_HINTS = {
    NUMBER: "the number only",
    TEXT: "the word or name only",
    LIST: "the items separated by commas, in order",
    DATE: "the date as YYYY-MM-DD",
    JSON: "the JSON object on one line",
}


@dataclass(frozen=True, slots=True)
class Item:
    """One question with its exact answer (canonical text, compared by `kind`)."""

    suite: str
    family: str
    difficulty: int
    seed: int
    prompt: str
    answer: str
    kind: str


def instruction(kind: str) -> str:
    """The stated answer format, appended to every prompt."""
    return ("\n\nWork it out, then give your final answer on the last line, exactly as "
            f"`Answer: <value>`, with {FORMAT_HINTS[kind]}.")


def _rng(family: str, difficulty: int, seed: int) -> random.Random:
    return random.Random(f"{SUITE}/{family}/{difficulty}/{seed}")


# -- arithmetic word problems ------------------------------------------------------------------

def arithmetic(rng: random.Random, difficulty: int) -> tuple[str, str, str]:
    value = rng.randint(20, 90)
    text = [f"A warehouse starts the day with {value} crates."]
    for _ in range({1: 2, 2: 4, 3: 6}[difficulty]):
        choices = ["arrive", "ship", "multiply"]
        divisors = [k for k in (2, 3, 4, 5) if value % k == 0 and value > k]
        if divisors:
            choices.append("divide")
        op = rng.choice(choices)
        if op == "arrive":
            n = rng.randint(3, 60)
            value += n
            text.append(f"Then {n} more crates arrive.")
        elif op == "ship" and value > 2:
            n = rng.randint(1, value - 1)
            value -= n
            text.append(f"Then {n} crates are shipped out.")
        elif op == "multiply" and value < 5000:
            k = rng.choice((2, 3))
            value *= k
            text.append(f"Then the number of crates is multiplied by {k}.")
        elif divisors:
            k = rng.choice(divisors)
            value //= k
            text.append(f"Then the crates are split into {k} equal groups and only one group "
                        "stays.")
        else:
            n = rng.randint(3, 60)
            value += n
            text.append(f"Then {n} more crates arrive.")
    text.append("How many crates are in the warehouse at the end?")
    return " ".join(text), str(value), NUMBER


# -- dates and weekdays ------------------------------------------------------------------------

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def dates(rng: random.Random, difficulty: int) -> tuple[str, str, str]:
    if difficulty == 1:
        today = rng.randrange(7)
        n = rng.randint(2, 40)
        return (f"If today is {WEEKDAYS[today]}, what day of the week will it be in {n} days?",
                WEEKDAYS[(today + n) % 7], TEXT)
    day = dt.date(1990, 1, 1) + dt.timedelta(days=rng.randrange(365 * 50))
    if difficulty == 2:
        n = rng.randint(10, 150)
        later = dt.date.fromordinal(day.toordinal() + n)
        return (f"What date is {n} days after {day.isoformat()}?", later.isoformat(), DATE)
    return (f"What day of the week was {MONTHS[day.month - 1]} {day.day}, {day.year}?",
            WEEKDAYS[day.weekday()], TEXT)


# -- counting ----------------------------------------------------------------------------------

WORDS = ("strawberry", "bookkeeper", "mississippi", "banana", "committee", "parallel",
         "occurrence", "assessment", "balloon", "coffee", "referee", "possession", "tomorrow",
         "engineer", "letter", "address", "millennium", "accommodate", "embarrass", "tattoo",
         "bubble", "pepper", "grammar", "success", "puzzle", "remember", "harmony", "window",
         "garden", "silver", "orange", "journey", "lantern", "meadow", "rocket", "velvet")


def counting(rng: random.Random, difficulty: int) -> tuple[str, str, str]:
    if difficulty == 1:
        word = rng.choice(WORDS)
        letter = rng.choice(sorted(set(word)))
        return (f"How many times does the letter '{letter}' appear in the word '{word}'?",
                str(sum(c == letter for c in word)), NUMBER)
    if difficulty == 2:
        text = " ".join(rng.sample(WORDS, 6))
        letter = rng.choice("aeiorst")
        return (f"How many times does the letter '{letter}' appear in this text: '{text}'?",
                str(sum(c == letter for c in text)), NUMBER)
    words = rng.sample(WORDS, 12)
    letter = rng.choice("eorst")
    count = len([w for w in words if sum(c == letter for c in w) >= 2])
    return (f"How many of these words contain the letter '{letter}' at least twice: "
            f"{', '.join(words)}?", str(count), NUMBER)


# -- sorting and string transforms -------------------------------------------------------------

def sorting(rng: random.Random, difficulty: int) -> tuple[str, str, str]:
    if difficulty == 1:
        numbers = rng.sample(range(1, 200), 6)
        ordered = _insertion_sorted(numbers)
        return (f"Sort these numbers from smallest to largest: {', '.join(map(str, numbers))}.",
                ", ".join(map(str, ordered)), LIST)
    if difficulty == 2:
        words = rng.sample(WORDS, 7)
        return (f"Sort these words alphabetically: {', '.join(words)}.",
                ", ".join(_insertion_sorted(words)), LIST)
    words = rng.sample(WORDS, 5)
    flipped = ["".join(reversed(w)) for w in words]
    return ("Write each of these words backwards (last letter first), then sort the "
            f"backwards words alphabetically: {', '.join(words)}.",
            ", ".join(_insertion_sorted(flipped)), LIST)


def _insertion_sorted(values: list[_T]) -> list[_T]:
    """Ascending order by insertion (tests check it against sorted())."""
    out: list[_T] = []
    for v in values:
        i = len(out)
        while i > 0 and out[i - 1] > v:
            i -= 1
        out.insert(i, v)
    return out


# -- unit conversions --------------------------------------------------------------------------

# (from, to, exact factor): definitions, not measurements (1 inch = 2.54 cm exactly, 1 mile =
# 1760 yards = 5280 feet).
CONVERSIONS = (
    ("kilometres", "metres", Decimal(1000)), ("metres", "centimetres", Decimal(100)),
    ("kilograms", "grams", Decimal(1000)), ("hours", "minutes", Decimal(60)),
    ("minutes", "seconds", Decimal(60)), ("inches", "centimetres", Decimal("2.54")),
    ("feet", "inches", Decimal(12)), ("miles", "yards", Decimal(1760)),
    ("litres", "millilitres", Decimal(1000)), ("days", "hours", Decimal(24)),
)
CHAINS = (  # two conversions in one: the model must chain them
    ("hours", "seconds", Decimal(3600)), ("kilometres", "centimetres", Decimal(100_000)),
    ("days", "minutes", Decimal(1440)), ("miles", "feet", Decimal(5280)),
    ("feet", "centimetres", Decimal("30.48")), ("kilograms", "milligrams", Decimal(1_000_000)),
)


def units(rng: random.Random, difficulty: int) -> tuple[str, str, str]:
    if difficulty == 1:
        src, dst, factor = rng.choice(CONVERSIONS)
        value = Decimal(rng.randint(2, 60))
    elif difficulty == 2:
        src, dst, factor = rng.choice(CONVERSIONS)
        value = Decimal(rng.choice([k for k in range(11, 1000) if k % 10])) / 10
    else:
        src, dst, factor = rng.choice(CHAINS)
        value = Decimal(rng.randint(11, 99)) / 10
    return (f"Convert {value} {src} to {dst}.", number_text(value * factor), NUMBER)


def number_text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 12.50 -> 12.5, 1E+3 -> 1000."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# -- ordering puzzles --------------------------------------------------------------------------

NAMES = ("Alice", "Bruno", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Julia",
         "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya")


def logic(rng: random.Random, difficulty: int) -> tuple[str, str, str]:
    n = {1: 3, 2: 4, 3: 5}[difficulty]
    order = rng.sample(NAMES, n)  # tallest first
    clues = []
    for taller, shorter in itertools.pairwise(order):
        if difficulty >= 2 and rng.random() < 0.5:
            clues.append(f"{shorter} is shorter than {taller}.")
        else:
            clues.append(f"{taller} is taller than {shorter}.")
    rng.shuffle(clues)
    position = {1: rng.choice((0, n - 1)), 2: rng.choice((0, 1, n - 2, n - 1)),
                3: rng.randrange(n)}[difficulty]
    return (f"{' '.join(clues)} Who is the {_rank_word(position, n)} of the {n}?",
            order[position], TEXT)


def _rank_word(position: int, n: int) -> str:
    if position == 0:
        return "tallest"
    if position == n - 1:
        return "shortest"
    ordinal = ("second", "third", "fourth")
    if position <= n - 1 - position:
        return f"{ordinal[position - 1]} tallest"
    return f"{ordinal[n - 2 - position]} shortest"


# -- output of short Python snippets -----------------------------------------------------------

def python(rng: random.Random, difficulty: int) -> tuple[str, str, str]:
    if difficulty == 1:
        a, b, c = rng.randint(2, 30), rng.randint(2, 9), rng.randint(1, 50)
        code = f"x = {a}\nx = x * {b} + {c}\nx -= {a}\nprint(x)"
        value = a * b + c - a
    elif difficulty == 2:
        n, k, m = rng.randint(3, 12), rng.randint(2, 7), rng.randint(2, 5)
        code = (f"total = 0\nfor i in range({n}):\n    total += i * {k}\n"
                f"total = total % {m * 10 + 7}\nprint(total)")
        value = (k * n * (n - 1) // 2) % (m * 10 + 7)
    else:
        a, b, m = rng.randint(3, 9), rng.randint(3, 9), rng.randint(2, 5)
        code = (f"count = 0\nfor i in range({a}):\n    for j in range({b}):\n"
                f"        if (i + j) % {m} == 0:\n            count += i\nprint(count)")
        value = sum(i for i in range(a) for j in range(b) if (i + j) % m == 0)
    return f"What does this Python program print?\n\n```python\n{code}\n```", str(value), NUMBER


# -- extraction into a JSON object -------------------------------------------------------------

CITIES = ("Porto", "Nairobi", "Osaka", "Quito", "Tallinn", "Lyon", "Accra", "Hanoi", "Perth",
          "Bergen", "Cusco", "Dakar")


def extraction(rng: random.Random, difficulty: int) -> tuple[str, str, str]:
    name = f"{rng.choice(NAMES)} {rng.choice(('Lopez', 'Okafor', 'Tanaka', 'Novak', 'Silva'))}"
    age, city = rng.randint(19, 88), rng.choice(CITIES)
    if difficulty == 1:
        text = f"{name} is {age} years old and lives in {city}."
        value: dict[str, object] = {"name": name, "age": age}
        schema = '"name" (string) and "age" (integer)'
    elif difficulty == 2:
        text = (f"Last spring the library in {city} hired a new archivist: {name}, who "
                f"turned {age} in March.")
        value = {"name": name, "age": age, "city": city}
        schema = '"name" (string), "age" (integer) and "city" (string)'
    else:
        people = [(p, rng.randint(19, 88)) for p in rng.sample(NAMES, 3)]
        text = (f"At the meeting, {people[0][0]} ({people[0][1]}) spoke first, then "
                f"{people[1][0]}, aged {people[1][1]}, and finally {people[2][0]}, who is "
                f"{people[2][1]}.")
        value = {"people": [{"name": p, "age": a} for p, a in people]}
        schema = ('"people": a list of {"name" (string), "age" (integer)}, one per person '
                  "in the order they appear")
    return (f"Extract from this text a JSON object with the keys {schema}.\n\nText: {text}",
            canonical_json(value), JSON)


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- retrieval from a long context -------------------------------------------------------------

def retrieval(rng: random.Random, difficulty: int) -> tuple[str, str, str]:
    lines = {1: 40, 2: 200, 3: 800}[difficulty]
    lockers = rng.sample(range(100, 10_000), lines)
    codes = [rng.randint(10_000, 99_999) for _ in lockers]
    wanted = rng.randrange(lines)
    body = "\n".join(f"Locker {locker}: code {code}."
                     for locker, code in zip(lockers, codes, strict=True))
    return (f"Here is the list of locker codes.\n\n{body}\n\nWhat is the code of locker "
            f"{lockers[wanted]}?", str(codes[wanted]), NUMBER)


GENERATORS: dict[str, Callable[[random.Random, int], tuple[str, str, str]]] = {
    "arithmetic": arithmetic, "dates": dates, "counting": counting, "sorting": sorting,
    "units": units, "logic": logic, "python": python, "extraction": extraction,
    "retrieval": retrieval,
}
FAMILIES = tuple(GENERATORS)


def make_item(family: str, difficulty: int, seed: int) -> Item:
    """The item (family, difficulty, seed) of this suite. KeyError for an unknown family,
    ValueError for a difficulty outside DIFFICULTIES."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty {difficulty}: expected one of {DIFFICULTIES}")
    question, answer, kind = GENERATORS[family](_rng(family, difficulty, seed), difficulty)
    return Item(SUITE, family, difficulty, seed, question + instruction(kind), answer, kind)


def digest(seeds: int = 5) -> str:
    """A fingerprint of what the generators produce (every family and difficulty, seeds
    0..seeds-1): a changed generator changes it, and must come with a new SUITE name."""
    h = hashlib.sha256()
    for family in FAMILIES:
        for difficulty in DIFFICULTIES:
            for seed in range(seeds):
                item = make_item(family, difficulty, seed)
                h.update(f"{family}/{difficulty}/{seed}\x00{item.prompt}\x00{item.answer}"
                         f"\x00{item.kind}\x00".encode())
    return h.hexdigest()[:16]
