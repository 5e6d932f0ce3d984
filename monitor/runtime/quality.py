"""The quality audit job: every `interval`, draw fresh items from a new seed, ask them of each
compared network and each reference network (once) at the same time, grade every answer,
judge each comparison, and hand the audits to the sinks (the store, /metrics, the demo).

Budget, per network and model and audit: `items` requests, plus the retries of items a
network refused for load (a 429, or an answer that says no capacity is free: REFUSED_RETRIES
more tries each, after a short wait; a refusal says nothing about how well a model answers),
never more than `max_requests` in all, and no request whose worst-case price (its prompt at
the token bound of monitor.core.quality.prompt_tokens_bound, max_tokens out) would take the audit's
spend above `max_spend_usd`; asking also stops as soon as too many requests failed for the
audit to reach `min_items`. Every reply is scrubbed of the network's secrets before it is
graded, stored or shown. An audit cut short by a stop is not recorded.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from monitor.analysis.quality import judge
from monitor.config import Config
from monitor.core.answerfile import AnswerSet, load_answers
from monitor.core.errors import UserError
from monitor.core.quality import (
    RAW_MAX_CHARS,
    Answer,
    Asked,
    QualityComparison,
    QualityPlan,
    QualityResult,
    QualitySettings,
    prompt_tokens_bound,
    request_cost_usd,
)
from monitor.core.quality_grading import grade
from monitor.core.quality_suite import Item, make_item
from monitor.core.result import Outcome
from monitor.core.secrets import scrub
from monitor.core.target import Target
from monitor.runtime import owned
from probes.busy import NO_CAPACITY_MARK
from probes.sampling import Completion, complete
from probes.session import SessionPool, TargetSession

log = logging.getLogger(__name__)

Numbered = Sequence[tuple[int, Item]]  # an audit's items with their number in the audit
SideAnswers = tuple[str, str, str, str, Answer]  # (side, network, tier, model, answer)


class AuditSink(Protocol):
    def on_audit(self, result: QualityResult, answers: Sequence[SideAnswers] = ()) -> None: ...


def graded(index: int, item: Item, outcome: str, reply: str | None, error: str,
           secret_values: Sequence[str | None] = ()) -> Answer:
    """One answer: the reply scrubbed of secrets, graded, and cut (its tail kept: the
    answer line is last) for storage."""
    if reply is None:
        return Answer(index, item.family, item.difficulty, item.seed, outcome, error=error)
    text = scrub(reply, secret_values)
    result = grade(item, text)
    # the tail is kept (the answer line is last), scrubbed again: a cut can leave a fragment
    kept = scrub(text[-RAW_MAX_CHARS:], secret_values) if len(text) > RAW_MAX_CHARS else text
    extracted = None if result.extracted is None else scrub(result.extracted, secret_values)
    return Answer(index, item.family, item.difficulty, item.seed, outcome, kept, extracted,
                  result.grade, error)


@dataclass
class _Budget:
    settings: QualitySettings
    price: Mapping[str, float] | None
    planned: int
    sent: int = 0
    failed: int = 0
    spent: float = 0.0
    reserved: float = 0.0
    capped: str = ""
    error: str = ""

    def take(self, prompt: str) -> float | None:
        """Reserve the next request's worst-case cost; None when a cap (or hopelessness)
        says to stop."""
        s = self.settings
        if self.sent >= s.max_requests:
            self.capped = self.capped or f"stopped at the request cap ({s.max_requests})"
            return None
        if self.planned - self.failed < s.min_items * self.planned:
            return None  # too many failed: the audit cannot reach min_items any more
        worst = request_cost_usd(self.price, prompt_tokens_bound(prompt), s.max_tokens) or 0.0
        if self.price is not None and self.spent + self.reserved + worst > s.max_spend_usd:
            self.capped = self.capped or f"stopped at the spend cap (${s.max_spend_usd:g})"
            return None
        self.sent += 1
        self.reserved += worst
        return worst

    def settle(self, reserved: float, cost: float | None) -> None:
        self.reserved -= reserved
        self.spent += reserved if cost is None else cost


REFUSED_RETRIES = 2  # more tries for an item the network refused for load
REFUSED_WAIT_S = 0.5  # before the first retry; doubled before the next


def refused_for_load(c: Completion) -> bool:
    """A request the network turned away before answering: rate limited, or no capacity free
    (probes.busy names such answers in the error text)."""
    return c.outcome is Outcome.RATE_LIMITED or (
        c.outcome is Outcome.HTTP_ERROR and NO_CAPACITY_MARK in c.error)


async def ask_network(target: Target, session: TargetSession, items: Numbered,
                      settings: QualitySettings, price: Mapping[str, float] | None = None
                      ) -> Asked:
    """Ask `target` every item, in order, `concurrency` at a time, within the caps, at
    temperature 0 and max_tokens (an item refused for load up to REFUSED_RETRIES times more);
    grade each reply."""
    budget = _Budget(settings, price, len(items))
    answers: list[Answer] = []
    queue = iter(items)
    secret_values = target.secrets()

    async def worker() -> None:
        for index, item in queue:
            for attempt in range(REFUSED_RETRIES + 1):
                if attempt:
                    await asyncio.sleep(REFUSED_WAIT_S * 2 ** (attempt - 1))
                reserved = budget.take(item.prompt)
                if reserved is None:
                    return
                c = await complete(target, session, item.prompt,
                                   temperature=settings.temperature,
                                   max_tokens=settings.max_tokens,
                                   deadline_s=settings.deadline_s)
                ok = c.outcome is Outcome.OK and c.text is not None
                budget.settle(reserved, request_cost_usd(price, c.input_tokens, c.output_tokens)
                              if ok and c.input_tokens is not None
                              and c.output_tokens is not None else None)
                if not refused_for_load(c):
                    break
            answers.append(graded(index, item, c.outcome.value, c.text if ok else None,
                                  c.error, secret_values))
            if not ok:
                budget.failed += 1
                budget.error = budget.error or f"{c.outcome.value}: {c.error}"

    await owned.gather(*(worker() for _ in range(settings.concurrency)))
    answers.sort(key=lambda a: a.index)
    return Asked(answers=tuple(answers), requests=budget.sent, failed=budget.failed,
                 spend_usd=budget.spent if price is not None else None, error=budget.error,
                 capped=budget.capped)


def stored_reference(answers: AnswerSet, settings: QualitySettings
                     ) -> tuple[list[tuple[int, Item]], tuple[Answer, ...]]:
    """A stored answer file's items (the first `items` of them) and its replies graded now."""
    kept = answers.answers[: settings.items]
    items = [(a.index, make_item(a.family, a.difficulty, a.seed)) for a in kept]
    regraded = tuple(graded(i, item, a.outcome, a.raw if a.outcome == Outcome.OK.value
                            else None, a.error)
                     for (i, item), a in zip(items, kept, strict=True))
    return items, regraded


@dataclass
class QualityRunner:
    """Runs the config's quality plan: `run_once()`, or `run()` every interval."""

    config: Config
    sinks: Sequence[AuditSink] = ()
    worse_in_a_row: dict[tuple[str, str, str], int] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    seeds: Callable[[], int] = lambda: secrets.randbits(63)
    pool: SessionPool | None = None
    runs: int = 0

    def __post_init__(self) -> None:
        assert self.config.quality is not None, "no quality section in the config"
        self.plan: QualityPlan = self.config.quality
        self._stored: dict[str, tuple[list[tuple[int, Item]], tuple[Answer, ...], int]] = {}
        for c in self.plan.comparisons:
            if c.reference_file is not None and c.reference_file not in self._stored:
                try:
                    answers = load_answers(c.reference_file)
                except ValueError as exc:  # checked with the config; gone or changed since
                    raise UserError(f"{c.reference_file}: {exc}") from None
                items, regraded = stored_reference(answers, self.plan.settings)
                self._stored[c.reference_file] = (items, regraded, answers.seed)

    def _target(self, network: str, tier: str) -> Target:
        return next(t for t in self.config.network(network).targets() if t.name == tier)

    async def run_once(self) -> list[QualityResult]:
        """One audit: ask every (network, tier) of the plan its items at once, each once,
        and judge each comparison as soon as both its sides have answered."""
        started_at = self.clock()
        t0 = time.perf_counter()
        settings = self.plan.settings
        seed = self.seeds() if settings.seed is None else settings.seed
        audit_id = uuid.uuid4().hex[:16]
        fresh = list(enumerate(settings.draw(seed)))
        pool = self.pool or SessionPool()
        asking: dict[tuple[str, str, str], asyncio.Future[Asked]] = {}

        def ask(network: str, tier: str, source: str) -> asyncio.Future[Asked]:
            key = (network, tier, source)
            if key not in asking:
                items = self._stored[source][0] if source else fresh
                asking[key] = asyncio.ensure_future(self._ask(pool, network, tier, items))
            return asking[key]

        for c in self.plan.comparisons:  # start every side at once
            ask(c.network, c.tier, c.reference_file or "")
            if c.reference_tier is not None:
                ask(c.reference, c.reference_tier, "")
        try:
            results = await owned.gather(*(
                self._judge(c, ask, audit_id, seed, started_at, t0)
                for c in self.plan.comparisons))
        finally:
            try:
                await owned.cancel_all(asking.values())
            finally:
                if self.pool is None:
                    await pool.close()
        self.runs += 1
        log.debug("quality audit of %d comparisons took %.1f s", len(results),
                  time.perf_counter() - t0)
        return list(results)

    async def _ask(self, pool: SessionPool, network: str, tier: str, items: Numbered) -> Asked:
        target = self._target(network, tier)
        session = pool.for_target(target, concurrency=self.plan.settings.concurrency)
        return await ask_network(target, session, items, self.plan.settings,
                                 self.config.price(network))

    async def _judge(self, c: QualityComparison,
                     ask: Callable[[str, str, str], asyncio.Future[Asked]], audit_id: str,
                     seed: int, started_at: float, t0: float) -> QualityResult:
        sides: list[SideAnswers] = []
        if c.reference_file is not None:
            _, reference, seed = self._stored[c.reference_file]
        else:
            assert c.reference_tier is not None
            reference = (await ask(c.reference, c.reference_tier, "")).answers
            model = self._target(c.reference, c.reference_tier).model
            sides += [("reference", c.reference, c.reference_tier, model, a)
                      for a in reference]
        network = await ask(c.network, c.tier, c.reference_file or "")
        sides += [("network", c.network, c.tier, c.model, a) for a in network.answers]
        result = judge(c, network, reference, self.plan.settings, audit_id=audit_id,
                       seed=seed, started_at=started_at,
                       worse_before=self.worse_in_a_row.get(c.key, 0),
                       duration_s=time.perf_counter() - t0)
        self.worse_in_a_row[c.key] = result.consecutive_worse
        log.info("quality: %s %s vs %s: %s (accuracy %s vs %s on %d items, p=%s)", c.network,
                 c.model, c.reference, result.verdict.value, _pct(result.accuracy),
                 _pct(result.reference_accuracy), result.pairs,
                 "-" if result.p_value is None else f"{result.p_value:.3g}")
        await asyncio.to_thread(self._deliver, result, sides)
        return result

    def _deliver(self, result: QualityResult, sides: Sequence[SideAnswers]) -> None:
        for sink in self.sinks:
            try:
                sink.on_audit(result, sides)
            except Exception:
                log.exception("sink %s failed on an audit", type(sink).__name__)

    async def run(self, *, first_delay_s: float = 0.0) -> None:
        """An audit now (after `first_delay_s`), then one every interval, until cancelled.
        An audit that raised is logged and the schedule goes on."""
        interval = self.plan.settings.interval_s
        await asyncio.sleep(first_delay_s)
        while True:
            t0 = time.perf_counter()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("quality audit failed; next one in %.0f s", interval)
            await asyncio.sleep(max(interval - (time.perf_counter() - t0), 0.0))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
