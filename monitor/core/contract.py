"""The contract checks' vocabulary: the versioned tool-call suite, its grades, the parameter
matrix's checks and cells, and the settings of the `contract:` section.

Tool calls are graded in OpenRouter's three error buckets (`invalid_json`, `unknown_name`,
`schema_mismatch`: its "Auto Exacto" tool-call error rate) plus what they leave out (`no_call`,
`unexpected_call`, `wrong_arguments`); each item's right answer is exactly known. Parameters
are judged against the OpenAI chat completions reference: each cell `honoured`, `ignored`,
`rejected` (a 4xx, with its message) or `not applicable`. docs/contract.md explains each check,
each grade and its source. The grading itself is monitor.core.contract_grade.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Grade(enum.StrEnum):
    OK = "ok"
    INVALID_JSON = "invalid_json"  # arguments are not a JSON object
    UNKNOWN_NAME = "unknown_name"  # a function the request did not declare
    SCHEMA_MISMATCH = "schema_mismatch"  # arguments break the declared JSON Schema
    NO_CALL = "no_call"  # a call was the right answer, none came
    UNEXPECTED_CALL = "unexpected_call"  # no call was the right answer, one came
    WRONG_ARGUMENTS = "wrong_arguments"  # valid calls, but not the known right ones


ERROR_GRADES = tuple(g for g in Grade if g is not Grade.OK)


class Cell(enum.StrEnum):
    HONOURED = "honoured"
    IGNORED = "ignored"
    REJECTED = "rejected"  # a 4xx: the server refuses the parameter (its message is kept)
    NOT_APPLICABLE = "not applicable"
    UNMEASURED = "unmeasured"  # the request failed otherwise (5xx, timeout): no verdict


# -- the tool-call suite -------------------------------------------------------------------

def function(name: str, description: str, properties: Mapping[str, Any],
             required: tuple[str, ...]) -> dict[str, Any]:
    """One `tools[]` entry (OpenAI's ChatCompletionFunctionTool)."""
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": dict(properties),
                       "required": list(required), "additionalProperties": False}}}


GET_WEATHER = function(
    "get_weather", "Current weather in a city.",
    {"city": {"type": "string", "description": "The city's English name, e.g. Paris"},
     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    ("city", "unit"))
CONVERT_CURRENCY = function(
    "convert_currency", "Convert an amount of money between currencies.",
    {"amount": {"type": "number"},
     "from_currency": {"type": "string", "description": "ISO 4217 code, e.g. EUR"},
     "to_currency": {"type": "string", "description": "ISO 4217 code, e.g. USD"}},
    ("amount", "from_currency", "to_currency"))


@dataclass(frozen=True, slots=True)
class Call:
    """An expected call: the function's name and its arguments, exactly."""

    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolItem:
    """One request whose right answer is exactly known: these calls (in any order), or none."""

    name: str
    user: str
    tools: tuple[dict[str, Any], ...]
    expected: tuple[Call, ...]

    def declared(self) -> dict[str, dict[str, Any]]:
        """Function name -> its parameters' JSON Schema."""
        return {t["function"]["name"]: t["function"]["parameters"] for t in self.tools}


@dataclass(frozen=True, slots=True)
class ToolSuite:
    name: str  # a changed item is a new name (tools-v2), never an edit
    items: tuple[ToolItem, ...]

    @property
    def digest(self) -> str:
        text = json.dumps([(i.name, i.user, i.tools, [(c.name, dict(c.arguments))
                                                      for c in i.expected])
                           for i in self.items], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def item(self, name: str) -> ToolItem:
        return next(i for i in self.items if i.name == name)

    def by_prompt(self, text: str) -> ToolItem | None:
        return next((i for i in self.items if i.user == text), None)


TOOLS_V1 = ToolSuite("tools-v1", (
    ToolItem("one-call",
             "What is the weather in Paris right now? Use the get_weather tool, in celsius.",
             (GET_WEATHER, CONVERT_CURRENCY),
             (Call("get_weather", {"city": "Paris", "unit": "celsius"}),)),
    ToolItem("other-function",
             "Convert 250 EUR to USD with the convert_currency tool.",
             (GET_WEATHER, CONVERT_CURRENCY),
             (Call("convert_currency",
                   {"amount": 250, "from_currency": "EUR", "to_currency": "USD"}),)),
    ToolItem("no-call",
             "What is 17 + 25? Answer with the number only; no tool can help with this.",
             (GET_WEATHER, CONVERT_CURRENCY), ()),
    ToolItem("parallel",
             "What is the weather in Paris and in Tokyo, both in celsius? Call get_weather "
             "once for each city, both calls at once.",
             (GET_WEATHER,),
             (Call("get_weather", {"city": "Paris", "unit": "celsius"}),
              Call("get_weather", {"city": "Tokyo", "unit": "celsius"}))),
))

SUITES: dict[str, ToolSuite] = {TOOLS_V1.name: TOOLS_V1}
DEFAULT_SUITE = TOOLS_V1.name


def tool_request(item: ToolItem, *, stream: bool, max_tokens: int) -> dict[str, Any]:
    """The request body of one suite item (the model is the target's)."""
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": item.user}], "tools": list(item.tools),
        "tool_choice": "auto", "temperature": 0, "max_tokens": max_tokens, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


# -- the parameter matrix --------------------------------------------------------------------

class Param(enum.StrEnum):
    MAX_TOKENS = "max_tokens"
    STOP = "stop"
    JSON_OBJECT = "response_format.json_object"
    JSON_SCHEMA = "response_format.json_schema"
    SEED = "seed"
    LOGPROBS = "logprobs"
    INCLUDE_USAGE = "stream_options.include_usage"
    REASONING = "reasoning_effort"


COUNT_PROMPT = "Count from 1 to 30, separated by commas and spaces."
STOP_STRING = "7"  # "1, 2, ..., 6, " then stop: the text must never contain it
CAPITAL_PROMPT = "Give the capital of France as a JSON object with the key \"capital\"."
CITY_PROMPT = "Name the largest city of Japan and its population in millions, as JSON."
CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population_millions": {"type": "number"}},
    "required": ["city", "population_millions"], "additionalProperties": False}
STORY_PROMPT = "Write one sentence about a lighthouse keeper."
REASONING_PROMPT = "Is 221 a prime number? Answer yes or no."
PARAM_MAX_TOKENS = 8
SEED = 4242
TOP_LOGPROBS = 3


def param_requests(param: Param, settings: ContractSettings) -> list[dict[str, Any]]:
    """The requests one matrix cell sends (grading: monitor.core.contract_grade)."""
    def chat(text: str, **extra: Any) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": text}], "temperature": 0,
                "max_tokens": settings.max_tokens, "stream": False, **extra}

    if param is Param.MAX_TOKENS:
        return [chat(COUNT_PROMPT, max_tokens=PARAM_MAX_TOKENS)]
    if param is Param.STOP:
        return [chat(COUNT_PROMPT, stop=[STOP_STRING])]
    if param is Param.JSON_OBJECT:
        return [chat(CAPITAL_PROMPT, response_format={"type": "json_object"})]
    if param is Param.JSON_SCHEMA:
        return [chat(CITY_PROMPT, response_format={"type": "json_schema", "json_schema": {
            "name": "city", "schema": CITY_SCHEMA, "strict": True}})]
    if param is Param.SEED:
        return [chat(STORY_PROMPT, seed=SEED) for _ in range(settings.seed_repeats)]
    if param is Param.LOGPROBS:
        return [chat(CAPITAL_PROMPT, logprobs=True, top_logprobs=TOP_LOGPROBS,
                     max_tokens=PARAM_MAX_TOKENS)]
    if param is Param.INCLUDE_USAGE:
        return [chat(COUNT_PROMPT, stream=True, stream_options={"include_usage": True})]
    # REASONING: the same question at the lowest and the highest effort
    return [chat(REASONING_PROMPT, reasoning_effort=effort) for effort in ("low", "high")]


# -- settings and results --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ContractSettings:
    """The `contract:` section's settings. A run sends every suite item streamed and not
    (2 x 4 requests) and the matrix (11 requests with the defaults) per network and model."""

    suite: str = DEFAULT_SUITE
    params: tuple[Param, ...] = tuple(Param)
    max_tokens: int = 128  # per request (the max_tokens cell asks for fewer)
    seed_repeats: int = 3  # identical requests of the seed cell
    interval_s: float = 6 * 3600.0
    concurrency: int = 2
    max_requests: int = 40  # per network and model, per run: a hard cap
    max_spend_usd: float = 0.05  # per network and model, per run (with price_per_mtok)
    deadline_s: float = 60.0  # per request
    alpha: float = 0.05  # the paired comparison's level and the interval's (1 - alpha)

    def planned_requests(self) -> int:
        tools = 2 * len(SUITES[self.suite].items)
        return tools + sum(len(param_requests(p, self)) for p in self.params)

    def request_worst_usd(self, price: Mapping[str, float] | None) -> float | None:
        """The most one request can cost: the largest input (the biggest tool schema, ~1,000
        tokens) and max_tokens out; None without a price."""
        if price is None:
            return None
        return (1000 * price["input"] + self.max_tokens * price["output"]) / 1e6

    def worst_case_usd(self, price: Mapping[str, float] | None) -> float | None:
        """The most one run can cost a network and model: every planned request at its worst
        case."""
        one = self.request_worst_usd(price)
        return None if one is None else min(self.planned_requests(), self.max_requests) * one


@dataclass(frozen=True, slots=True)
class ToolGrade:
    """One suite item's answer, graded (table `contract_tool_grades`)."""

    run_id: str
    network: str
    tier: str
    model: str
    started_at: float
    suite: str
    item: str
    stream: bool
    grade: Grade | None  # None: the request failed (see outcome)
    outcome: str  # the request's outcome (monitor.core.result.Outcome value)
    finish_reason: str | None
    calls: int
    detail: str = ""  # what was wrong, scrubbed and cut (never a label)


@dataclass(frozen=True, slots=True)
class ParamCell:
    """One matrix cell of one run (table `contract_params`)."""

    run_id: str
    network: str
    tier: str
    model: str
    started_at: float
    param: Param
    cell: Cell
    detail: str = ""  # the measurement, or the 4xx message (scrubbed, cut)
    value: float | None = None  # e.g. the seed cell's share of identical answers


@dataclass(frozen=True, slots=True)
class ContractRun:
    """One network and model's contract run (table `contract_runs`)."""

    run_id: str
    network: str
    tier: str
    model: str
    reference: str | None  # the reference network, graded on the same items at the same time
    started_at: float
    suite: str
    suite_digest: str
    requests: int
    spend_usd: float | None
    duration_s: float
    capped: str = ""  # why the run stopped early (a cap), else ""
    grades: tuple[ToolGrade, ...] = ()
    cells: tuple[ParamCell, ...] = ()


@dataclass(frozen=True, slots=True)
class ContractPlan:
    """The config's `contract:` section: settings, the networks' tiers, their reference."""

    settings: ContractSettings
    targets: tuple[tuple[str, str], ...]  # (network, tier)
    reference: tuple[str, str] | None = None  # (network, tier) graded beside each
