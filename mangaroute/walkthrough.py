"""A scripted day-in-the-life of the router, in virtual time, on any config.

It drives the real :class:`~mangaroute.core.router.Router` (same ``choose``/``record`` code as
production) with a :class:`~mangaroute.core.clock.FakeClock` and a seeded rng: no AWS, no
sleeping, the same output for the same seed. Latency of each target is drawn from a lognormal
fitted to its prior p50 and p99. Each call walks its decision's fallbacks while the inference
budget lasts, as an orchestrator would.

Phases (MangaAssist defaults): a quiet morning; an outage of the primary target (fast
``ServiceUnavailableException`` errors) that opens its breaker and moves the primary; its
recovery through half-open probes and the switch back; and an evening peak that fills the
provisioned throughput, so the primary spills over on capacity.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mangaroute.core.clock import NS_PER_S, FakeClock
from mangaroute.core.decision import Decision
from mangaroute.core.outcome import Outcome
from mangaroute.core.router import Router
from mangaroute.core.settings import RouterConfig
from mangaroute.core.snapshot import RouterEvent
from mangaroute.core.targets import Target

_Z99 = 2.3263478740408408  # standard normal quantile of 0.99


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    seconds: float
    rps: float
    failing: frozenset[str] = frozenset()
    """Targets that answer every call with a fast ServiceUnavailableException."""

    @property
    def description(self) -> str:
        down = f", {', '.join(sorted(self.failing))} down" if self.failing else ""
        return f"{self.seconds:g} s at {self.rps:g} req/s{down}"


@dataclass(slots=True)
class PhaseReport:
    name: str
    requests: int = 0
    answered: int = 0
    within_budget: int = 0
    failovers: int = 0
    by_target: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "phase": self.name,
            "requests": self.requests,
            "answered": self.answered,
            "answered_within_budget": self.within_budget,
            "failovers": self.failovers,
            "p50_ms": _rank(ordered, 0.50),
            "p99_ms": _rank(ordered, 0.99),
            "answered_by": dict(self.by_target.most_common()),
            "reasons": dict(self.by_reason.most_common()),
        }


def _rank(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[max(1, math.ceil(q * len(ordered))) - 1], 1)


def default_phases(primary: str | None) -> list[Phase]:
    failing = frozenset({primary}) if primary else frozenset()
    return [
        Phase("quiet morning", 180, 1.0),
        Phase("primary outage", 180, 1.0, failing),
        Phase("recovery", 360, 1.0),
        Phase("evening peak", 180, 6.0),
    ]


@dataclass(slots=True)
class Walkthrough:
    """Runs the phases and collects what happened."""

    config: RouterConfig
    seed: int = 7
    budget_ms: float = 1500.0
    phases: list[Phase] | None = None
    reports: list[PhaseReport] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def run(self) -> Router:
        clock = FakeClock(1_000 * NS_PER_S)
        rng = random.Random(self.seed)
        router = Router(self.config, clock=clock, rng=random.Random(self.seed + 1))
        start = clock.now_ns

        def keep(event: RouterEvent) -> None:
            fields = {k: v for k, v in event.to_dict().items() if k not in ("at_ns", "unix_time")}
            t_s = round((event.at_ns - start) / NS_PER_S, 1)
            self.events.append({"t_s": t_s, "event": event.kind, **fields})

        router.subscribe(keep)
        classes = router.request_classes
        phases = self.phases or default_phases(router.primary)
        for phase in phases:
            report = PhaseReport(phase.name)
            self.reports.append(report)
            end = clock.now_ns + round(phase.seconds * NS_PER_S)
            while clock.now_ns < end:
                clock.advance(seconds=rng.expovariate(phase.rps))
                self._serve(router, clock, rng, rng.choice(classes), phase, report)
        return router

    def _serve(
        self,
        router: Router,
        clock: FakeClock,
        rng: random.Random,
        request_class: str,
        phase: Phase,
        report: PhaseReport,
    ) -> None:
        report.requests += 1
        input_tokens = max(50, round(rng.gauss(500, 120)))
        output_tokens = max(20, round(rng.gauss(300, 80)))
        decision = router.choose(
            request_class,
            budget_ms=self.budget_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
        report.by_reason[decision.reason] += 1
        elapsed = 0.0
        for attempt, target in enumerate(decision.attempts):
            if attempt and elapsed >= self.budget_ms:
                break
            report.failovers += 1 if attempt else 0
            failed = target.name in phase.failing
            latency = 40.0 if failed else _draw_latency(target, rng)
            elapsed += latency
            self._record(
                router,
                decision if attempt == 0 else target.name,
                failed,
                latency,
                input_tokens,
                output_tokens,
            )
            if not failed:
                report.answered += 1
                report.within_budget += elapsed <= self.budget_ms
                report.by_target[target.name] += 1
                report.latencies.append(elapsed)
                return

    @staticmethod
    def _record(
        router: Router,
        subject: Decision | str,
        failed: bool,
        latency: float,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        if failed:
            router.record(
                subject, Outcome.ERROR, latency_ms=latency, error_code="ServiceUnavailableException"
            )
        else:
            router.record(
                subject,
                Outcome.OK,
                latency_ms=latency,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )


def _draw_latency(target: Target, rng: random.Random) -> float:
    prior = target.prior
    mu = math.log(max(prior.p50_ms, 1.0))
    sigma = max(0.0, (math.log(max(prior.p99_ms, 1.0)) - mu) / _Z99)
    latency = rng.lognormvariate(mu, sigma)
    if prior.cold_start_probability and rng.random() < prior.cold_start_probability:
        latency += prior.cold_start_ms
    return latency
