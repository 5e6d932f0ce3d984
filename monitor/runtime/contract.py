"""The contract checks' run: every `interval`, each configured network and model (and the
reference, at the same time, on the same items) answers the tool-call suite, streamed and not,
and the parameter matrix's requests; the answers are graded (monitor.core.contract_grade) and
the run goes to the sinks (the store, /metrics).

Budget, per network and model and run: at most `max_requests` requests, no retries, and no
request whose worst-case price would take the run above `max_spend_usd`; what a cap stopped
is left ungraded (a tool item) or `unmeasured` (a cell), and the run says which cap. Every
text a network wrote is scrubbed of the target's secrets before it is graded or kept.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.config import Config
from monitor.core.contract import (
    SUITES,
    Cell,
    ContractPlan,
    ContractRun,
    ContractSettings,
    Grade,
    Param,
    ParamCell,
    ToolGrade,
    param_requests,
    tool_request,
)
from monitor.core.contract_grade import Reply, SeenCall, grade_param, grade_tools, shorten
from monitor.core.result import Outcome
from monitor.core.target import Target
from monitor.runtime import owned
from probes.contract import Answer, ask
from probes.session import SessionPool, TargetSession

log = logging.getLogger(__name__)


class ContractSink(Protocol):
    def on_contract(self, run: ContractRun) -> None: ...


def reply_of(answer: Answer, stream: bool) -> Reply:
    """What grading sees of an answer (already scrubbed)."""
    return Reply(ok=answer.outcome is Outcome.OK, status=answer.http_status, error=answer.error,
                 content=answer.content,
                 calls=tuple(SeenCall(c.name, c.arguments) for c in answer.tool_calls),
                 finish_reason=answer.finish_reason, usage_out=answer.usage_out,
                 deltas=answer.deltas, generated_chars=answer.generated_chars,
                 reasoning_chars=answer.reasoning_chars, logprobs=answer.logprobs,
                 top_logprobs=answer.top_logprobs, stream=stream)


@dataclass
class Budget:
    """The run's hard caps: requests, and worst-case spend reserved before each request."""

    settings: ContractSettings
    price: Mapping[str, float] | None
    sent: int = 0
    spent: float = 0.0
    capped: str = ""

    def worst_usd(self) -> float:
        if self.price is None:
            return 0.0
        return (1000 * self.price["input"] + self.settings.max_tokens * self.price["output"]
                ) / 1e6

    def take(self) -> bool:
        s = self.settings
        if self.sent >= s.max_requests:
            self.capped = self.capped or f"stopped at the request cap ({s.max_requests})"
            return False
        if self.price is not None and self.spent + self.worst_usd() > s.max_spend_usd:
            self.capped = self.capped or f"stopped at the spend cap (${s.max_spend_usd:g})"
            return False
        self.sent += 1
        self.spent += self.worst_usd()  # settled to the reported usage after the answer
        return True

    def settle(self, answer: Answer) -> None:
        if self.price is None or answer.usage_out is None:
            return
        used = ((answer.usage_in or 0) * self.price["input"]
                + answer.usage_out * self.price["output"]) / 1e6
        self.spent += min(used, self.worst_usd()) - self.worst_usd()


async def check_target(target: Target, session: TargetSession, settings: ContractSettings,
                       price: Mapping[str, float] | None = None, *, reference: str | None = None,
                       clock: Callable[[], float] = time.time) -> ContractRun:
    """One contract run of one network and model."""
    started_at = clock()
    t0 = time.perf_counter()
    run_id = secrets.token_hex(8)
    budget = Budget(settings, price)
    keys = target.secrets()
    gate = asyncio.Semaphore(settings.concurrency)
    suite = SUITES[settings.suite]

    async def send(body: dict[str, Any]) -> Answer | None:
        if not budget.take():
            return None
        async with gate:
            answer = await ask(target, session, body, deadline_s=settings.deadline_s)
        budget.settle(answer)
        return answer.scrubbed(keys)

    def graded(item: str, stream: bool, grade: Grade | None, answer: Answer,
               detail: str) -> ToolGrade:
        return ToolGrade(run_id=run_id, network=target.network, tier=target.name,
                         model=target.model, started_at=started_at, suite=suite.name,
                         item=item, stream=stream, grade=grade, outcome=answer.outcome.value,
                         finish_reason=answer.finish_reason, calls=len(answer.tool_calls),
                         detail=detail)

    def judged(param: Param, cell: Cell, detail: str, value: float | None = None
               ) -> ParamCell:
        return ParamCell(run_id=run_id, network=target.network, tier=target.name,
                         model=target.model, started_at=started_at, param=param, cell=cell,
                         detail=detail, value=value)

    async def tool(item_name: str, stream: bool) -> ToolGrade | None:
        item = suite.item(item_name)
        answer = await send(tool_request(item, stream=stream, max_tokens=settings.max_tokens))
        if answer is None:
            return None
        if answer.outcome is not Outcome.OK:
            return graded(item.name, stream, None, answer, shorten(answer.error))
        grade, detail = grade_tools(item, reply_of(answer, stream).calls)
        return graded(item.name, stream, grade, answer, detail)

    async def cell(param: Param) -> ParamCell:
        replies: list[Reply] = []
        for body in param_requests(param, settings):  # in order: the seed cell compares them
            answer = await send(body)
            if answer is None:
                return judged(param, Cell.UNMEASURED, budget.capped)
            replies.append(reply_of(answer, bool(body.get("stream"))))
        return judged(param, *grade_param(param, replies))

    tools = [tool(i.name, s) for i in suite.items for s in (False, True)]
    answered = await owned.gather(*tools)
    cells = await owned.gather(*(cell(p) for p in settings.params))
    return ContractRun(
        run_id=run_id, network=target.network, tier=target.name, model=target.model,
        reference=reference, started_at=started_at, suite=suite.name,
        suite_digest=suite.digest, requests=budget.sent,
        spend_usd=budget.spent if price is not None else None,
        duration_s=time.perf_counter() - t0, capped=budget.capped,
        grades=tuple(g for g in answered if g is not None), cells=tuple(cells))


@dataclass
class ContractRunner:
    """Runs the config's contract plan: `run_once()`, or `run()` every interval."""

    config: Config
    sinks: Sequence[ContractSink] = ()
    clock: Callable[[], float] = time.time
    pool: SessionPool | None = None
    runs: int = field(default=0)

    def __post_init__(self) -> None:
        assert self.config.contract is not None, "no contract section in the config"
        self.plan: ContractPlan = self.config.contract

    def _target(self, network: str, tier: str) -> Target:
        return next(t for t in self.config.network(network).targets() if t.name == tier)

    async def run_once(self) -> list[ContractRun]:
        """Every target and the reference, all at once (the same items, the same time)."""
        pool = self.pool or SessionPool()
        ref = self.plan.reference
        pairs = list(self.plan.targets)
        if ref is not None and ref not in pairs:
            pairs.append(ref)
        try:
            runs = await owned.gather(*(
                self._one(pool, network, tier, None if (network, tier) == ref or ref is None
                          else ref[0]) for network, tier in pairs))
        finally:
            if self.pool is None:
                await pool.close()
        self.runs += 1
        for run in runs:
            errors = sum(1 for g in run.grades if g.grade is not None and g.grade.value != "ok")
            log.info("contract: %s %s: %d/%d tool answers wrong, %s", run.network, run.model,
                     errors, len(run.grades), ", ".join(
                         f"{c.param.value} {c.cell.value}" for c in run.cells))
            await asyncio.to_thread(self._deliver, run)
        return list(runs)

    async def _one(self, pool: SessionPool, network: str, tier: str,
                   reference: str | None) -> ContractRun:
        target = self._target(network, tier)
        session = pool.for_target(target, concurrency=self.plan.settings.concurrency)
        return await check_target(target, session, self.plan.settings,
                                  self.config.price(network), reference=reference,
                                  clock=self.clock)

    def _deliver(self, run: ContractRun) -> None:
        for sink in self.sinks:
            try:
                sink.on_contract(run)
            except Exception:
                log.exception("sink %s failed on a contract run", type(sink).__name__)

    async def run(self, *, first_delay_s: float = 0.0) -> None:
        """A run now (after `first_delay_s`), then one every interval, until cancelled."""
        interval = self.plan.settings.interval_s
        await asyncio.sleep(first_delay_s)
        while True:
            t0 = time.perf_counter()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("contract run failed; next one in %.0f s", interval)
            await asyncio.sleep(max(interval - (time.perf_counter() - t0), 0.0))
