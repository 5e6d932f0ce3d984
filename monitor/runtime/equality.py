"""The model equality job: every `interval`, sample each compared network (and each reference
network, once) for the prompt set, test each comparison, and hand the verdicts to the sinks
(the store, /metrics, the demo's board).

Budget, per network and model and run: the planned prompts x samples_per_prompt requests at
most (never more than `max_requests`), no retries, and no request whose worst-case price
would take the run's spend above `max_spend_usd`; sampling also stops as soon as too many
requests failed for the run to reach `min_samples`. A run cut short by a stop is not recorded.
The test itself (permutations) runs in a thread: probes keep their timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from monitor.analysis.equality import judge
from monitor.config import Config
from monitor.core.equality import (
    Comparison,
    EqualityPlan,
    EqualityResult,
    EqualitySettings,
    Sample,
    Sampled,
    request_cost_usd,
)
from monitor.core.errors import UserError
from monitor.core.result import Outcome
from monitor.core.samplefile import load_samples
from monitor.core.target import Target
from monitor.runtime import owned
from probes.sampling import complete
from probes.session import SessionPool, TargetSession

log = logging.getLogger(__name__)


Sampling = asyncio.Future[Sampled]


class VerdictSink(Protocol):
    def on_verdict(self, result: EqualityResult) -> None: ...


@dataclass
class _Budget:
    settings: EqualitySettings
    price: Mapping[str, float] | None
    need: float  # samples the run must reach for a verdict
    sent: int = 0
    failed: int = 0
    ok: int = 0
    spent: float = 0.0
    reserved: float = 0.0
    capped: str = ""
    error: str = ""

    def take(self, planned: int) -> float | None:
        """Reserve the next request's worst-case cost; None when a cap (or hopelessness)
        says to stop."""
        s = self.settings
        if self.sent >= s.max_requests:
            self.capped = self.capped or f"stopped at the request cap ({s.max_requests})"
            return None
        if planned - self.failed < self.need:
            return None  # too many failed: the run cannot reach min_samples any more
        worst = request_cost_usd(s, self.price) or 0.0
        if self.price is not None and self.spent + self.reserved + worst > s.max_spend_usd:
            self.capped = self.capped or f"stopped at the spend cap (${s.max_spend_usd:g})"
            return None
        self.sent += 1
        self.reserved += worst
        return worst

    def settle(self, reserved: float, cost: float | None) -> None:
        self.reserved -= reserved
        self.spent += reserved if cost is None else cost


async def sample_network(target: Target, session: TargetSession, settings: EqualitySettings,
                         price: Mapping[str, float] | None = None) -> Sampled:
    """Ask `target` for samples_per_prompt completions of each prompt, round-robin over the
    prompts (a run stopped early stays balanced), `concurrency` at a time, within the caps."""
    prompts = settings.prompt_texts()
    order = [p for _ in range(settings.samples_per_prompt) for p in range(len(prompts))]
    budget = _Budget(settings, price, settings.min_samples * len(order))
    samples: list[Sample] = []
    queue = iter(order)

    async def worker() -> None:
        for prompt in queue:
            reserved = budget.take(len(order))
            if reserved is None:
                return
            c = await complete(target, session, prompts[prompt],
                               temperature=settings.temperature,
                               max_tokens=settings.max_tokens, deadline_s=settings.deadline_s)
            budget.settle(reserved, request_cost_usd(settings, price, c.input_tokens,
                                                     c.output_tokens)
                          if c.outcome is Outcome.OK and c.output_tokens is not None else None)
            if c.outcome is Outcome.OK and c.text is not None:
                samples.append(Sample(prompt, c.text))
            else:
                budget.failed += 1
                budget.error = budget.error or f"{c.outcome.value}: {c.error}"

    await owned.gather(*(worker() for _ in range(settings.concurrency)))
    return Sampled(samples=tuple(samples), requests=budget.sent, failed=budget.failed,
                   spend_usd=budget.spent if price is not None else None,
                   error=budget.error, capped=budget.capped)


@dataclass
class EqualityRunner:
    """Runs the config's equality plan: `run_once()`, or `run()` every interval."""

    config: Config
    sinks: Sequence[VerdictSink] = ()
    differs_in_a_row: dict[tuple[str, str, str], int] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    pool: SessionPool | None = None
    runs: int = 0

    def __post_init__(self) -> None:
        assert self.config.equality is not None, "no equality section in the config"
        self.plan: EqualityPlan = self.config.equality
        self._woken = asyncio.Event()
        self._stored: dict[str, tuple[Sample, ...]] = {}
        for c in self.plan.comparisons:
            if c.reference_file is not None:
                try:
                    self._stored[c.reference_file] = load_samples(c.reference_file).samples
                except ValueError as exc:  # checked with the config; gone or changed since
                    raise UserError(f"{c.reference_file}: {exc}") from None

    def _target(self, network: str, tier: str) -> Target:
        return next(t for t in self.config.network(network).targets() if t.name == tier)

    async def run_once(self) -> list[EqualityResult]:
        """Sample every (network, tier) of the plan at once, each once, and test each
        comparison as soon as both its sides are sampled (in a thread)."""
        started_at = self.clock()
        t0 = time.perf_counter()
        pool = self.pool or SessionPool()
        settings = self.plan.settings
        sampling = {key: asyncio.ensure_future(self._sample(pool, *key))
                    for key in self.plan.networks()}
        try:
            results = await owned.gather(*(
                self._test(c, sampling, started_at, t0) for c in self.plan.comparisons))
        finally:
            try:
                await owned.cancel_all(sampling.values())
            finally:
                if self.pool is None:
                    await pool.close()
        self.runs += 1
        log.debug("model equality run of %d comparisons took %.1f s (%s)",
                  len(results), time.perf_counter() - t0, settings.prompt_set)
        return list(results)

    async def _sample(self, pool: SessionPool, network: str, tier: str) -> Sampled:
        target = self._target(network, tier)
        session = pool.for_target(target, concurrency=self.plan.settings.concurrency)
        return await sample_network(target, session, self.plan.settings,
                                    self.config.price(network))

    async def _test(self, c: Comparison, sampling: Mapping[tuple[str, str], Sampling],
                    started_at: float, t0: float) -> EqualityResult:
        if c.reference_file is not None:
            reference: Sequence[Sample] = self._stored[c.reference_file]
        else:
            assert c.reference_tier is not None
            reference = (await sampling[(c.reference, c.reference_tier)]).samples
        network = await sampling[(c.network, c.tier)]
        result = await asyncio.to_thread(
            judge, c, network, reference, self.plan.settings, started_at=started_at,
            differed_before=self.differs_in_a_row.get(c.key, 0),
            duration_s=time.perf_counter() - t0)
        self.differs_in_a_row[c.key] = result.consecutive_differs
        log.info("model equality: %s %s vs %s: %s (p=%s, %d/%d samples)", c.network, c.model,
                 c.reference, result.verdict.value,
                 "-" if result.p_value is None else f"{result.p_value:.3g}", result.samples,
                 result.reference_samples)
        await asyncio.to_thread(self._deliver, result)
        return result

    def _deliver(self, result: EqualityResult) -> None:
        for sink in self.sinks:
            try:
                sink.on_verdict(result)
            except Exception:
                log.exception("sink %s failed on a verdict", type(sink).__name__)

    async def run(self, *, first_delay_s: float = 0.0) -> None:
        """A run now (after `first_delay_s`), then one every interval, until cancelled. A run
        that raised is logged and the schedule goes on."""
        interval = self.plan.settings.interval_s
        await asyncio.sleep(first_delay_s)
        while True:
            t0 = time.perf_counter()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("model equality run failed; next one in %.0f s", interval)
            await self._pause(max(interval - (time.perf_counter() - t0), 0.0))

    def wake(self) -> None:
        """Start the next scheduled run now instead of at its interval (a fingerprint saw
        the model change); the schedule goes on from that run."""
        self._woken.set()

    async def _pause(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
        # arrives as the event is set, and the schedule would then outlive its monitor
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()
        self._woken.clear()
