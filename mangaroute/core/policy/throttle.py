"""Cheap 429s are a resource: keep a throttling target first while the bet pays.

The ``headroom`` filter cuts a target whose throttle rate reaches ``max_throttle_rate``. When
that target is the cheap one and its throttles come back fast (a Bedrock
``ThrottlingException`` takes a round trip of tens of milliseconds), the cut can cost more
than it saves: every call goes to the dearer fallback, while trying the cheap target first
would answer most calls at its price and send only the throttled ones on, one round trip late.

At each snapshot rebuild (never per call), for a target the cut would drop, with throttle
probability ``p`` (its throttle rate over the window), its predicted time per answer ``L``
and price per call ``c``, and the fallback ``F`` (the best of the other targets the headroom
filter keeps, as the ``cost_under_slo`` judge ranks them):

    expected cost    = (1 - p) x c + p x c_F                  (a throttled call is not billed)
    expected latency = (1 - p) x L + p x (round trip + L_F)

The target stays in play while ``p < 1``, the expected latency is within the SLO and the
expected cost is below the fallback's (so: it is cheaper). Latencies are the judge's
predictions (p99 over the success rate, time to first token for streamed routers), so the
expected latency is a cautious one. Below the cut nothing changes, and a target throttling
every call (``p = 1``) is cut as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mangaroute.core.limits import LIMITS, RangeError
from mangaroute.core.policy.cost import CostUnderSlo
from mangaroute.core.policy.filters import Headroom
from mangaroute.core.snapshot import TargetView

ROUND_TRIP_RANGE = LIMITS["headroom.throttle_round_trip_ms"]
"""What ``throttle_round_trip_ms`` accepts (docs/limits.md)."""


@dataclass(frozen=True, slots=True)
class Bet:
    """The expected cost and latency per answer of trying a throttling target first."""

    cost_usd: float
    latency_ms: float
    keeps: bool
    """Worth trying first: ``p < 1``, expected latency within the SLO, cheaper than the
    fallback."""


def throttle_bet(
    p: float,
    cost_usd: float,
    latency_ms: float,
    fallback_cost_usd: float,
    fallback_latency_ms: float,
    round_trip_ms: float,
    slo_ms: float,
) -> Bet:
    """The bet on a target throttling with probability ``p``; see the module docstring."""
    p = min(max(p, 0.0), 1.0)
    expected_cost = (1.0 - p) * cost_usd + p * fallback_cost_usd
    expected_ms = (1.0 - p) * latency_ms + p * (round_trip_ms + fallback_latency_ms)
    keeps = p < 1.0 and expected_ms <= slo_ms and expected_cost < fallback_cost_usd
    return Bet(expected_cost, expected_ms, keeps)


@dataclass(frozen=True, slots=True)
class ThrottleBet:
    """Filter ``headroom`` with ``throttle_round_trip_ms`` set: the headroom filter, whose
    throttle cut keeps a target while :func:`throttle_bet` says trying it first pays.

    ``among`` (called by the policy at each rebuild with the class's eligible targets)
    returns a copy that knows which throttling targets to keep; ``bets`` reports them."""

    headroom: Headroom
    throttle_round_trip_ms: float
    judge: CostUnderSlo = field(default_factory=CostUnderSlo)
    """Prices, predicted latency and the SLO (``slo_p99_ms``) the bet is judged by."""
    bets: tuple[tuple[str, Bet], ...] = ()
    name: str = "headroom"

    def __post_init__(self) -> None:
        reason = ROUND_TRIP_RANGE.violation(self.throttle_round_trip_ms)
        if reason is not None:
            raise RangeError("throttle_round_trip_ms", reason)

    def among(self, views: Sequence[TargetView]) -> ThrottleBet:
        headroom, judge = self.headroom, self.judge
        room = [v for v in views if v.available and headroom.exclude(v) is None]
        bets = []
        for view in views:
            if headroom.at_capacity(view) is not None or headroom.throttling(view) is None:
                continue
            others = [v for v in room if v.name != view.name]
            if not others:
                continue
            fallback = judge.rank(others)[0][0]
            bet = throttle_bet(
                view.throttle_rate,
                judge.marginal_usd(view),
                judge.predictor.expected_ms(view, judge.avg_output_tokens),
                judge.marginal_usd(fallback),
                judge.predictor.expected_ms(fallback, judge.avg_output_tokens),
                self.throttle_round_trip_ms,
                judge.slo_p99_ms,
            )
            bets.append((view.name, bet))
        return replace(self, bets=tuple(bets))

    def exclude(self, view: TargetView) -> str | None:
        reason = self.headroom.exclude(view)
        if reason is None or self.headroom.at_capacity(view) is not None:
            return reason
        for name, bet in self.bets:
            if name == view.name and bet.keeps:
                return None
        return reason
