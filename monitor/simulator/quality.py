"""How the simulator answers the quality suite: it reads each question like a model would
(parsing the prompt's text, never looking up a seed), and answers right with the probability
its skill gives for the item's family and difficulty, wrong otherwise, deterministically per
(network seed, model, prompt).

Skill tables: `large` for a served model whose id names a large size (70b, 72b, 405b, or the
word large), `small` otherwise; a profile's `skill: degraded` makes its large models answer
with the `degraded` table (what a network quietly serving a heavily quantized model, or an
engine that drops a setting, looks like: 5 to 25 points below the large model, more on the
harder items, 15 on average); its `skill_drop` takes as many points more off every cell.
docs/quality.md.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import re
from decimal import Decimal

from monitor.core.quality_suite import (
    CHAINS,
    CONVERSIONS,
    MONTHS,
    WEEKDAYS,
    canonical_json,
    number_text,
)

SKILLS = ("faithful", "degraded")

# P(correct) per family, for difficulty 1, 2, 3.
LARGE: dict[str, tuple[float, float, float]] = {
    "arithmetic": (0.97, 0.92, 0.85), "dates": (0.97, 0.9, 0.75),
    "counting": (0.92, 0.8, 0.65), "sorting": (0.97, 0.93, 0.8),
    "units": (0.97, 0.93, 0.88), "logic": (0.96, 0.88, 0.75),
    "python": (0.96, 0.88, 0.72), "extraction": (0.98, 0.95, 0.9),
    "retrieval": (0.99, 0.95, 0.88),
}
SMALL = {f: (a - 0.1, b - 0.18, c - 0.25) for f, (a, b, c) in LARGE.items()}
DEGRADED = {f: (a - 0.05, b - 0.15, c - 0.25) for f, (a, b, c) in LARGE.items()}
_LARGE_MODEL = re.compile(r"(?<![0-9])(70|72|405|120)b|large", re.IGNORECASE)


def skill_table(model: str, skill: str) -> dict[str, tuple[float, float, float]]:
    if not _LARGE_MODEL.search(model):
        return SMALL
    return DEGRADED if skill == "degraded" else LARGE


def uniform(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts (stable across processes)."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def reply(prompt: str, model: str, skill: str, seed: int, drop: float = 0.0) -> str | None:
    """The simulator's reply to a quality item (None: not one of the suite's questions), `drop`
    below the skill table's probability of a right answer."""
    if "`Answer: <value>`" not in prompt:  # every other request, cheaply
        return None
    solved = solve(prompt)
    if solved is None:
        return None
    family, difficulty, answer = solved
    p = skill_table(model, skill)[family][difficulty - 1] - drop
    if uniform(seed, model, prompt) >= p:
        answer = near_miss(answer, uniform("wrong", seed, model, prompt))
    return f"Answer: {answer}"


def near_miss(answer: str, u: float) -> str:
    """A plausible wrong answer: another number, a shuffled list, another word."""
    if re.fullmatch(r"-?\d+(\.\d+)?", answer):
        return number_text(Decimal(answer) + (1 if u < 0.5 else -1))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", answer):
        return (dt.date.fromisoformat(answer) + dt.timedelta(days=1)).isoformat()
    if ", " in answer:
        items = answer.split(", ")
        return ", ".join(items[1:] + items[:1])
    if answer in WEEKDAYS:
        return WEEKDAYS[(WEEKDAYS.index(answer) + 1) % 7]
    if answer.startswith("{"):
        return answer.replace("1", "2", 1) if "1" in answer else answer.replace("2", "3", 1)
    return "Nobody"


# -- reading the questions --------------------------------------------------------------------

def solve(prompt: str) -> tuple[str, int, str] | None:
    """(family, difficulty, answer) of a question of the suite, by reading its text; None
    for any other prompt."""
    question = prompt.split("\n\nWork it out", 1)[0]
    for solver in _SOLVERS:
        try:
            found = solver(question)
        except (ValueError, KeyError, IndexError, ZeroDivisionError):
            found = None
        if found is not None:
            return found
    return None


def _arithmetic(q: str) -> tuple[str, int, str] | None:
    m = re.match(r"A warehouse starts the day with (\d+) crates\. (.*) How many crates", q)
    if not m:
        return None
    value = int(m.group(1))
    steps = re.findall(r"Then ([^.]*)\.", m.group(2))
    for step in steps:
        if (s := re.fullmatch(r"(\d+) more crates arrive", step)):
            value += int(s.group(1))
        elif (s := re.fullmatch(r"(\d+) crates are shipped out", step)):
            value -= int(s.group(1))
        elif (s := re.fullmatch(r"the number of crates is multiplied by (\d+)", step)):
            value *= int(s.group(1))
        elif (s := re.fullmatch(r"the crates are split into (\d+) equal groups and only one "
                                r"group stays", step)):
            value //= int(s.group(1))
        else:
            return None
    return "arithmetic", {2: 1, 4: 2, 6: 3}[len(steps)], str(value)


def _dates(q: str) -> tuple[str, int, str] | None:
    if (m := re.fullmatch(r"If today is (\w+), what day of the week will it be in (\d+) "
                          r"days\?", q)):
        return "dates", 1, WEEKDAYS[(WEEKDAYS.index(m.group(1)) + int(m.group(2))) % 7]
    if (m := re.fullmatch(r"What date is (\d+) days after (\d{4}-\d{2}-\d{2})\?", q)):
        day = dt.date.fromisoformat(m.group(2)) + dt.timedelta(days=int(m.group(1)))
        return "dates", 2, day.isoformat()
    if (m := re.fullmatch(r"What day of the week was (\w+) (\d+), (\d+)\?", q)):
        day = dt.date(int(m.group(3)), MONTHS.index(m.group(1)) + 1, int(m.group(2)))
        return "dates", 3, day.strftime("%A")
    return None


def _counting(q: str) -> tuple[str, int, str] | None:
    if (m := re.fullmatch(r"How many times does the letter '(\w)' appear in the word "
                          r"'(\w+)'\?", q)):
        return "counting", 1, str(m.group(2).count(m.group(1)))
    if (m := re.fullmatch(r"How many times does the letter '(\w)' appear in this text: "
                          r"'([\w ]+)'\?", q)):
        return "counting", 2, str(m.group(2).count(m.group(1)))
    if (m := re.fullmatch(r"How many of these words contain the letter '(\w)' at least "
                          r"twice: ([\w, ]+)\?", q)):
        words = m.group(2).split(", ")
        return "counting", 3, str(sum(w.count(m.group(1)) >= 2 for w in words))
    return None


def _sorting(q: str) -> tuple[str, int, str] | None:
    if (m := re.fullmatch(r"Sort these numbers from smallest to largest: ([\d, ]+)\.", q)):
        return "sorting", 1, ", ".join(map(str, sorted(int(x) for x in m.group(1).split(", "))))
    if (m := re.fullmatch(r"Sort these words alphabetically: ([\w, ]+)\.", q)):
        return "sorting", 2, ", ".join(sorted(m.group(1).split(", ")))
    if (m := re.fullmatch(r"Write each of these words backwards \(last letter first\), then "
                          r"sort the backwards words alphabetically: ([\w, ]+)\.", q)):
        return "sorting", 3, ", ".join(sorted(w[::-1] for w in m.group(1).split(", ")))
    return None


_FACTORS = {(a, b): f for a, b, f in CONVERSIONS + CHAINS}


def _units(q: str) -> tuple[str, int, str] | None:
    m = re.fullmatch(r"Convert ([\d.]+) (\w+) to (\w+)\.", q)
    if not m:
        return None
    value, src, dst = Decimal(m.group(1)), m.group(2), m.group(3)
    pair = (src, dst)
    level = 3 if pair in {(a, b) for a, b, _ in CHAINS} else 2 if "." in m.group(1) else 1
    return "units", level, number_text(value * _FACTORS[pair])


def _logic(q: str) -> tuple[str, int, str] | None:
    m = re.fullmatch(r"(.*) Who is the (.+) of the (\d)\?", q)
    if not m:
        return None
    above: dict[str, set[str]] = {}  # name -> the names taller than it
    names: set[str] = set()
    shorter_clues = 0
    for a, rel, b in re.findall(r"(\w+) is (taller|shorter) than (\w+)\.", m.group(1)):
        taller, shorter = (a, b) if rel == "taller" else (b, a)
        shorter_clues += rel == "shorter"
        above.setdefault(shorter, set()).add(taller)
        names |= {a, b}
    n = int(m.group(3))
    order = []
    while names:  # the tallest left: nobody left above it
        top = [x for x in names if not (above.get(x, set()) & names)]
        if len(top) != 1:
            return None
        order.append(top[0])
        names.remove(top[0])
    words = m.group(2).split()
    if words == ["tallest"]:
        position = 0
    elif words == ["shortest"]:
        position = n - 1
    else:
        k = ("second", "third", "fourth").index(words[0]) + 1
        position = k if words[1] == "tallest" else n - 1 - k
    return "logic", {3: 1, 4: 2, 5: 3}[n], order[position]


def _python(q: str) -> tuple[str, int, str] | None:
    m = re.fullmatch(r"What does this Python program print\?\n\n```python\n(.*)\n```", q,
                     re.DOTALL)
    if not m:
        return None
    code = m.group(1)
    level = 3 if "    for" in code else 2 if "for " in code else 1
    return "python", level, run_snippet(code).strip()


def _extraction(q: str) -> tuple[str, int, str] | None:
    m = re.match(r"Extract from this text a JSON object with the keys .*\n\nText: (.*)", q,
                 re.DOTALL)
    if not m:
        return None
    text = m.group(1)
    if (s := re.fullmatch(r"(.+) is (\d+) years old and lives in (\w+)\.", text)):
        return "extraction", 1, canonical_json({"name": s.group(1), "age": int(s.group(2))})
    if (s := re.fullmatch(r"Last spring the library in (\w+) hired a new archivist: (.+), "
                          r"who turned (\d+) in March\.", text)):
        return "extraction", 2, canonical_json({"name": s.group(2), "age": int(s.group(3)),
                                                "city": s.group(1)})
    if (s := re.fullmatch(r"At the meeting, (\w+) \((\d+)\) spoke first, then (\w+), aged "
                          r"(\d+), and finally (\w+), who is (\d+)\.", text)):
        g = s.groups()
        people = [{"name": g[i], "age": int(g[i + 1])} for i in (0, 2, 4)]
        return "extraction", 3, canonical_json({"people": people})
    return None


def _retrieval(q: str) -> tuple[str, int, str] | None:
    if not q.startswith("Here is the list of locker codes."):
        return None
    codes = dict(re.findall(r"Locker (\d+): code (\d+)\.", q))
    wanted = re.search(r"What is the code of locker (\d+)\?$", q)
    if wanted is None:
        return None
    return "retrieval", {40: 1, 200: 2, 800: 3}[len(codes)], codes[wanted.group(1)]


_SOLVERS = (_arithmetic, _dates, _counting, _sorting, _units, _logic, _python, _extraction,
            _retrieval)


# -- a safe interpreter for the suite's snippets ----------------------------------------------

MAX_STEPS = 100_000


def run_snippet(code: str) -> str:
    """What a snippet of the suite prints, by walking its syntax tree: integers, names,
    + - * // %, comparisons, assignment, augmented assignment, `for` over range(), `if` and
    print(). Nothing is executed; anything else (or more than MAX_STEPS steps) is a
    ValueError."""
    out: list[str] = []
    names: dict[str, int] = {}
    steps = [0]

    def value(node: ast.expr) -> int:
        steps[0] += 1
        if steps[0] > MAX_STEPS:
            raise ValueError("too many steps")
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.BinOp):
            a, b = value(node.left), value(node.right)
            ops = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__,
                   ast.FloorDiv: int.__floordiv__, ast.Mod: int.__mod__}
            return int(ops[type(node.op)](a, b))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            a, b = value(node.left), value(node.comparators[0])
            cmp = {ast.Eq: a == b, ast.NotEq: a != b, ast.Lt: a < b, ast.Gt: a > b,
                   ast.LtE: a <= b, ast.GtE: a >= b}
            return int(cmp[type(node.ops[0])])
        raise ValueError(f"unsupported expression {type(node).__name__}")

    def run(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                    and isinstance(stmt.targets[0], ast.Name):
                names[stmt.targets[0].id] = value(stmt.value)
            elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                names[stmt.target.id] = value(ast.BinOp(
                    ast.Name(stmt.target.id), stmt.op, stmt.value))
            elif isinstance(stmt, ast.For) and isinstance(stmt.target, ast.Name) \
                    and isinstance(stmt.iter, ast.Call) \
                    and isinstance(stmt.iter.func, ast.Name) and stmt.iter.func.id == "range" \
                    and 1 <= len(stmt.iter.args) <= 2 and not stmt.orelse:
                bounds = [value(a) for a in stmt.iter.args]
                for i in range(*bounds):
                    names[stmt.target.id] = i
                    run(stmt.body)
            elif isinstance(stmt, ast.If):
                run(stmt.body if value(stmt.test) else stmt.orelse)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) \
                    and isinstance(stmt.value.func, ast.Name) \
                    and stmt.value.func.id == "print" and len(stmt.value.args) == 1:
                out.append(str(value(stmt.value.args[0])))
            else:
                raise ValueError(f"unsupported statement {type(stmt).__name__}")

    try:
        run(ast.parse(code).body)
    except (SyntaxError, KeyError, RecursionError) as exc:
        raise ValueError(f"not a snippet of the suite ({type(exc).__name__})") from None
    return "\n".join(out) + "\n"


__all__ = ["SKILLS", "reply", "run_snippet", "skill_table", "solve"]
