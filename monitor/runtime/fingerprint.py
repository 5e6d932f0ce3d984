"""The fingerprint job: per network and model, discover border inputs once (and again when
they wear out), then every `interval` re-sample them at temperature 0, one output token each,
test today against the trailing baseline and the reference (a reference network's samples of
the same run where the config names one, else the set's stored reference), and hand the
verdicts to the sinks (the store, /metrics). A verdict "changed" calls `on_change` (the agent
starts a model equality run at once).

Budget, per network and model: a run sends at most `max_requests` requests and spends at most
`max_spend_usd`, its reference network's requests included; a discovery at most
`discovery_max_requests` and `discovery_max_spend_usd`. No retries; no request whose
worst-case cost would cross the cap (failures count at their worst case). With top_logprobs
(asked at discovery; a network that answers them is sampled with them) one request tells an
input's whole first-token distribution: discovery tries each candidate once and a run asks
each input `logprob_samples` times instead of `samples_per_input`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from monitor.analysis.fingerprint import (
    baseline_runs,
    border_inputs,
    closest_ties,
    judge,
    observation,
    still_varying,
)
from monitor.config import Config
from monitor.core.fingerprint import (
    BorderSet,
    FingerprintResult,
    FingerprintSettings,
    Method,
    Observation,
    Sampled,
    Target,
    Verdict,
    request_cost_usd,
)
from monitor.core.result import Outcome
from monitor.core.target import Target as ProbeTarget
from monitor.runtime import owned
from monitor.runtime.budget import Budget
from monitor.runtime.periodic import every
from probes.firsttoken import FirstToken, first_token
from probes.session import SessionPool, TargetSession

log = logging.getLogger(__name__)


class VerdictSink(Protocol):
    def on_fingerprint(self, result: FingerprintResult) -> None: ...


class SetSink(Protocol):
    def on_border_set(self, border: BorderSet) -> None: ...


async def ask(target: ProbeTarget, session: TargetSession, order: Sequence[str],
              budget: Budget, settings: FingerprintSettings, top_logprobs: int
              ) -> dict[str, list[FirstToken]]:
    """Each prompt of `order` once (repeats allowed), `concurrency` at a time, within the
    budget; the answers that came back, by prompt."""
    answers: dict[str, list[FirstToken]] = {}
    queue = iter(order)

    async def worker() -> None:
        for prompt in queue:
            reserved = budget.take(request_cost_usd(budget.price, prompt))
            if reserved is None:
                return
            got = await first_token(target, session, prompt, top_logprobs=top_logprobs,
                                    deadline_s=settings.deadline_s)
            ok = got.outcome is Outcome.OK
            budget.settle(reserved, request_cost_usd(budget.price, "", got.input_tokens,
                                                     got.output_tokens)
                          if ok and got.output_tokens is not None else None)
            budget.output_tokens += got.output_tokens or (1 if ok else 0)
            if not ok:
                budget.fail(f"{got.outcome.value}: {got.error}")
            if got.outcome is Outcome.OK and got.token is not None:
                answers.setdefault(prompt, []).append(got)

    await owned.gather(*(worker() for _ in range(settings.concurrency)))
    return answers


def observations_of(answers: Mapping[str, Sequence[FirstToken]], logprobs: bool
                    ) -> tuple[dict[str, list[Observation]], int]:
    """The completed answers (what `ask` returns) as observations, by prompt, and how many
    answers were left out: with `logprobs`, an answer without top_logprobs (a gateway that
    dropped them, a canned reply) is not an observation, since a set found with logprobs is
    compared with logprobs only; it counts as a failed sample."""
    observations: dict[str, list[Observation]] = {}
    missing = 0
    for prompt, got in answers.items():
        for a in got:
            if logprobs and not a.top:
                missing += 1
                continue
            observations.setdefault(prompt, []).append(observation(a.token or "", a.top))
    return observations, missing


# Whether a network answers top_logprobs is asked of the first candidates, this many at a time
# (at most `concurrency`), for at most this many rounds: until answers complete. A failed
# request (an error, a disconnect, no capacity) says nothing about logprobs.
PROBE_BATCH = 8
PROBE_ROUNDS = 3
PROBE_DECIDES = 3  # completed answers without top_logprobs, and none with: the token method


async def probe_logprobs(target: ProbeTarget, session: TargetSession,
                         candidates: Sequence[str], budget: Budget,
                         settings: FingerprintSettings
                         ) -> tuple[Method, dict[str, list[FirstToken]], int]:
    """The method the network allows, from its completed answers to the first candidates
    asked with top_logprobs (one try each): logprobs as soon as one completed answer carries
    them. With those answers, and how many of the first candidates were asked."""
    batch = max(1, min(PROBE_BATCH, settings.concurrency))
    answers: dict[str, list[FirstToken]] = {}
    asked = 0
    for _ in range(PROBE_ROUNDS):
        if asked >= len(candidates) or budget.capped:
            break
        got = await ask(target, session, candidates[asked:asked + batch], budget, settings,
                        settings.top_logprobs)
        asked = min(asked + batch, len(candidates))
        for prompt, more in got.items():
            answers.setdefault(prompt, []).extend(more)
        done = [a for more in answers.values() for a in more]
        if any(a.top for a in done):
            return Method.LOGPROBS, answers, asked
        if len(done) >= PROBE_DECIDES:
            break
    return Method.TOKENS, answers, asked


@dataclass(frozen=True, slots=True)
class Discovery:
    border: BorderSet | None  # None: too few border inputs found (see `error`)
    requests: int
    spend_usd: float | None
    error: str = ""
    failed: int = 0  # requests that did not complete, and answers that were no sample
    output_tokens: int = 0


async def discover(fp: Target, target: ProbeTarget, session: TargetSession,
                   settings: FingerprintSettings, price: Mapping[str, float] | None,
                   version: int, *, now: float) -> Discovery:
    """B3IT's discovery, bounded: try candidates at temperature 0 (each once with logprobs,
    else `tries` times), keep those whose first token varies (or, with logprobs, whose top
    two are closest), then sample the kept ones for their reference. Only completed answers
    are tries and reference samples; failed requests are counted, never read as a token."""
    budget = Budget(settings.discovery_max_requests, settings.discovery_max_spend_usd, price)
    candidates = settings.candidate_prompts()
    method, asked = Method.TOKENS, 0
    probed: dict[str, list[FirstToken]] = {}
    if settings.top_logprobs:
        method, probed, asked = await probe_logprobs(target, session, candidates, budget,
                                                     settings)
    if method is Method.LOGPROBS:
        rest = await ask(target, session, candidates[asked:], budget, settings,
                         settings.top_logprobs)
        tried = {**probed, **rest}
        tops = {p: next((a.top for a in got if a.top), ()) for p, got in tried.items()}
        kept = closest_ties(tops, settings.border_inputs)
        repeats = settings.logprob_samples * 3
    else:
        # the probe's answers are those candidates' first tries (the token is the token)
        order = [*candidates[asked:], *(p for _ in range(settings.tries - 1) for p in candidates)]
        tried = {p: list(got) for p, got in probed.items()}
        for prompt, got in (await ask(target, session, order, budget, settings, 0)).items():
            tried.setdefault(prompt, []).extend(got)
        kept = border_inputs({p: [a.token or "" for a in answers]
                              for p, answers in tried.items()}, settings.border_inputs)
        repeats = settings.reference_samples
    if len(kept) < settings.min_border_inputs:
        why = (f"{len(kept)} border inputs among {len(tried)} candidates answered (need "
               f"{settings.min_border_inputs}); try more candidates (candidates_tried)")
        return Discovery(None, budget.sent, budget.spend_usd,
                         "; ".join(p for p in (why, budget.capped, budget.error) if p),
                         budget.failed, budget.output_tokens)
    logprobs = method is Method.LOGPROBS
    answers = await ask(target, session, [p for _ in range(repeats) for p in kept], budget,
                        settings, settings.top_logprobs if logprobs else 0)
    reference, missing = observations_of(answers, logprobs)
    border = BorderSet(network=fp.network, model=fp.model, version=version, method=method,
                       prompts=tuple(kept), reference={p: reference.get(p, []) for p in kept},
                       created_at=now, candidates=settings.candidates, tried=len(tried),
                       requests=budget.sent, spend_usd=budget.spend_usd)
    error = budget.error or (f"{missing} reference answers without top_logprobs (not "
                             "samples)" if missing else "")
    return Discovery(border, budget.sent, budget.spend_usd, error, budget.failed + missing,
                     budget.output_tokens)


async def sample(target: ProbeTarget, session: TargetSession, border: BorderSet,
                 settings: FingerprintSettings, price: Mapping[str, float] | None,
                 reference: tuple[ProbeTarget, TargetSession, Mapping[str, float] | None]
                 | None = None) -> tuple[Sampled, Sampled | None]:
    """One run's observations of the set's inputs, round-robin (a run cut short stays
    balanced), within the run's caps; with `reference` (a reference network, its session
    and price), the same inputs from it at the same time and settings, its requests and
    spend counted in the same caps."""
    if reference is None:
        budget = Budget(settings.max_requests, settings.max_spend_usd, price)
        return await _sample_one(target, session, border, settings, budget), None
    ref_target, ref_session, ref_price = reference
    whole = Budget(settings.max_requests, settings.max_spend_usd, None)
    got, ref = await owned.gather(
        _sample_one(target, session, border, settings,
                    Budget(settings.max_requests, settings.max_spend_usd, price, whole=whole)),
        _sample_one(ref_target, ref_session, border, settings,
                    Budget(settings.max_requests, settings.max_spend_usd, ref_price,
                           whole=whole)))
    return got, ref


async def _sample_one(target: ProbeTarget, session: TargetSession, border: BorderSet,
                      settings: FingerprintSettings, budget: Budget) -> Sampled:
    logprobs = border.method is Method.LOGPROBS
    per_input = settings.logprob_samples if logprobs else settings.samples_per_input
    order = [p for _ in range(per_input) for p in border.prompts]
    answers = await ask(target, session, order, budget, settings,
                        settings.top_logprobs if logprobs else 0)
    observations, missing = observations_of(answers, logprobs)
    dropped = ("the set was found with them; re-discover with `fingerprint --discover`"
               if not observations else "not samples")
    error = budget.error or (f"{missing} answers without top_logprobs ({dropped})"
                             if missing else "")
    return Sampled(observations=observations, requests=budget.sent,
                   failed=budget.failed + missing, output_tokens=budget.output_tokens,
                   spend_usd=budget.spend_usd, error=error, capped=budget.capped,
                   logprobs=logprobs)


@dataclass
class FingerprintRunner:
    """Runs the config's fingerprint plan: `run_once()`, or `run()` every interval. `sets`
    and `history` (oldest first) carry over from the store."""

    config: Config
    sinks: Sequence[VerdictSink] = ()
    set_sinks: Sequence[SetSink] = ()
    sets: dict[tuple[str, str], BorderSet] = field(default_factory=dict)
    history: dict[tuple[str, str], list[FingerprintResult]] = field(default_factory=dict)
    on_change: Callable[[FingerprintResult], None] | None = None
    clock: Callable[[], float] = time.time
    pool: SessionPool | None = None

    def __post_init__(self) -> None:
        assert self.config.fingerprint is not None, "no fingerprint section in the config"
        self.settings: FingerprintSettings = self.config.fingerprint.settings
        self.targets: tuple[Target, ...] = self.config.fingerprint.targets

    def _target(self, fp: Target, network: str | None = None) -> ProbeTarget:
        """The probe target of `fp`'s tier on its network (or on `network`, its reference)."""
        return next(t for t in self.config.network(network or fp.network).targets()
                    if t.name == fp.tier)

    async def run_once(self, *, rediscover: bool = False) -> list[FingerprintResult]:
        """Every target at once: a discovery where it has no set (or `rediscover`, or its set
        wore out), else a fingerprint run."""
        pool = self.pool or SessionPool()
        try:
            results = await owned.gather(*(self._one(pool, fp, rediscover)
                                            for fp in self.targets))
        finally:
            if self.pool is None:
                await pool.close()
        return list(results)

    def _worn(self, fp: Target, border: BorderSet) -> bool:
        """Too few inputs still vary over the baseline, and the network has not been found
        to differ from its reference (a set never silently adopts another model)."""
        history = self.history.get(fp.key, [])
        runs = baseline_runs(history, border.version, self.settings.baseline_runs)
        if not runs or history[-1].verdict is not Verdict.SAME:
            return False
        return still_varying(border, [r.observations for r in runs]) < \
            self.settings.min_border_inputs

    async def _one(self, pool: SessionPool, fp: Target, rediscover: bool) -> FingerprintResult:
        started_at = self.clock()
        t0 = time.perf_counter()
        target = self._target(fp)
        session = pool.for_target(target, concurrency=self.settings.concurrency)
        price = self.config.price(fp.network)
        border = self.sets.get(fp.key)
        if border is None or rediscover or self._worn(fp, border):
            version = border.version + 1 if border is not None else 1
            found = await discover(fp, target, session, self.settings, price, version,
                                   now=started_at)
            if found.border is not None:
                self.sets[fp.key] = found.border
                self._deliver_set(found.border)
            result = FingerprintResult(
                network=fp.network, tier=fp.tier, model=fp.model, started_at=started_at,
                verdict=Verdict.DISCOVERED if found.border else Verdict.NOT_ENOUGH,
                set_version=found.border.version if found.border else version - 1,
                method=found.border.method if found.border else Method.TOKENS,
                distance=None, p_value=None, reference_distance=None,
                reference_p_value=None, samples=0, requests=found.requests,
                failed=found.failed, output_tokens=found.output_tokens,
                spend_usd=found.spend_usd, alpha=self.settings.alpha, baseline_runs=0,
                duration_s=time.perf_counter() - t0, error=found.error)
        else:
            reference = None
            if fp.reference is not None:
                ref_target = self._target(fp, fp.reference)
                reference = (ref_target, pool.for_target(
                    ref_target, concurrency=self.settings.concurrency),
                    self.config.price(fp.reference))
            got, ref = await sample(target, session, border, self.settings, price, reference)
            history = self.history.get(fp.key, [])
            runs = baseline_runs(history, border.version, self.settings.baseline_runs)
            previous = history[-1].started_at if history else border.created_at
            result = await asyncio.to_thread(
                judge, fp, border, got, [r.observations for r in runs], self.settings,
                started_at=started_at, previous_at=previous,
                duration_s=time.perf_counter() - t0, reference=ref)
        self.history.setdefault(fp.key, []).append(result)
        del self.history[fp.key][: -(self.settings.baseline_runs + 2)]
        log.info("fingerprint: %s %s: %s (TV %s, p=%s; %d requests)", fp.network, fp.model,
                 result.verdict.value, "-" if result.distance is None
                 else f"{result.distance:.3f}", "-" if result.p_value is None
                 else f"{result.p_value:.3g}", result.requests)
        await asyncio.to_thread(self._deliver, result)
        if result.verdict is Verdict.CHANGED and self.on_change is not None:
            self.on_change(result)
        return result

    def _deliver(self, result: FingerprintResult) -> None:
        for sink in self.sinks:
            try:
                sink.on_fingerprint(result)
            except Exception:
                log.exception("sink %s failed on a fingerprint", type(sink).__name__)

    def _deliver_set(self, border: BorderSet) -> None:
        for sink in self.set_sinks:
            try:
                sink.on_border_set(border)
            except Exception:
                log.exception("sink %s failed on a border set", type(sink).__name__)

    async def run(self, *, first_delay_s: float = 0.0) -> None:
        """A run now (after `first_delay_s`), then one every interval, until cancelled."""
        await every(self.settings.interval_s, self.run_once, "fingerprint run", log,
                    first_delay_s=first_delay_s)
