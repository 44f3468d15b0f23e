"""The allowed range of every numeric setting, in one table.

A setting outside its range is rejected twice over with the same words: by the TOML reader
(``mangaroute config check`` names the file and the key) and by the settings dataclass's
constructor (a Python user gets the same message). The ranges are wide enough for any sane
deployment and narrow enough that memory stays bounded and arithmetic stays finite:

* a sliding window holds at most :data:`MAX_WINDOW_BUCKETS` buckets per target - the router
  allocates them all up front, so ``window_s = 1e6`` with ``bucket_s = 0.001`` would ask for
  a billion of them;
* durations stop at a day (a week for ejections and breaker cool-downs), so a cool-down that
  doubles per ejection, times ``1e9`` ns per second, never leaves the float range;
* latencies stop at an hour, the largest value the latency histogram holds
  (:class:`~mangaroute.core.histogram.LogScale`'s ``max_value``);
* probabilities, shares and rates are fractions in ``[0, 1]``; NaN and infinities are never
  numbers here.

``docs/limits.md`` prints this table; a test keeps the two in step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mangaroute.core.errors import echo

MAX_WINDOW_BUCKETS = 3600
"""Buckets per sliding window (``window_s / bucket_s``): an hour of 1 s buckets."""

_HOUR_MS = 3_600_000.0
_DAY_S = 86_400.0
_WEEK_S = 604_800.0


@dataclass(frozen=True, slots=True)
class Range:
    """The values a setting accepts: ``low`` to ``high``, each end inclusive unless open."""

    low: float
    high: float
    unit: str = ""
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """``between 0.01 and 3,600 seconds``; an open end says ``(exclusive)``."""
        low = _show(self.low) + (" (exclusive)" if self.low_open else "")
        high = _show(self.high) + (" (exclusive)" if self.high_open else "")
        unit = f" {self.unit}" if self.unit else ""
        kind = "an integer " if self.integer else ""
        return f"{kind}between {low} and {high}{unit}"

    def violation(self, value: object) -> str | None:
        """Why ``value`` is not allowed, or ``None`` when it is."""
        noun = "an integer" if self.integer else "a number"
        wanted = int if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            return f"expected {noun}, got {echo(value)}: must be {self.describe()}"
        number = float(value)
        if not math.isfinite(number):
            return f"expected a finite number, got {echo(value)}: must be {self.describe()}"
        if number < self.low or (self.low_open and number == self.low):
            side = ("> " if self.low_open else ">= ") + _show(self.low)
        elif number > self.high or (self.high_open and number == self.high):
            side = ("< " if self.high_open else "<= ") + _show(self.high)
        else:
            return None
        return f"expected {noun} {side}, got {echo(value)}: must be {self.describe()}"


def _show(bound: float) -> str:
    """``86,400``, ``0.02``, ``-24``: whole numbers with thousands separators."""
    return f"{bound:,.0f}" if bound.is_integer() else f"{bound:g}"


class RangeError(ValueError):
    """A setting outside its range; ``field`` is the attribute, ``reason`` the rest."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field} {reason}")


def _r(low: float, high: float, unit: str = "", **flags: bool) -> Range:
    return Range(float(low), float(high), unit, **flags)


def _count(low: int, high: int, unit: str = "") -> Range:
    return Range(float(low), float(high), unit, integer=True)


def _fraction(*, low_open: bool = False, high_open: bool = False) -> Range:
    return Range(0.0, 1.0, "", low_open=low_open, high_open=high_open)


_POSITIVE = {"low_open": True}
_MS_LATENCY = _r(0, _HOUR_MS, "ms")
_SLO_MS = _r(0, _HOUR_MS, "ms", **_POSITIVE)
_TOKENS_IN = _count(0, 10_000_000, "tokens")
_TOKENS_OUT = _count(1, 1_000_000, "tokens")
_REQUESTS = _count(1, 1_000_000, "calls")
_UTC_OFFSET = _r(-24, 24, "hours", low_open=True, high_open=True)

LIMITS: Mapping[str, Range] = {
    # [router]: the sliding window and the decision ledger (mangaroute.core.settings)
    "router.window_s": _r(0.02, _DAY_S, "seconds"),
    "router.bucket_s": _r(0.01, 3600, "seconds"),
    "router.relative_error": _r(0.001, 0.25),
    "router.min_samples": _count(1, 1_000_000, "samples"),
    "router.refresh_ms": _r(0.001, 60_000, "ms"),
    "router.decision_ttl_s": _r(0.001, _DAY_S, "seconds"),
    "router.max_outstanding": _count(1, 1_000_000, "decisions"),
    # [breaker] (mangaroute.core.breaker)
    "breaker.consecutive_failures": _count(1, 10_000, "failures"),
    "breaker.error_rate": _fraction(low_open=True),
    "breaker.min_requests": _REQUESTS,
    "breaker.interval_s": _r(0.001, _DAY_S, "seconds"),
    "breaker.cooldown_s": _r(0.001, _DAY_S, "seconds"),
    "breaker.max_cooldown_s": _r(0.001, _WEEK_S, "seconds"),
    "breaker.half_open_probes": _count(1, 1000, "probes"),
    "breaker.probe_timeout_s": _r(0.001, _DAY_S, "seconds"),
    "breaker.successes_to_close": _count(1, 1000, "successes"),
    # [shared] (mangaroute.core.fleet)
    "shared.sync_interval_ms": _r(0, 60_000, "ms", **_POSITIVE),
    "shared.stale_after_ms": _r(2, 600_000, "ms"),
    "shared.timeout_ms": _r(0, 60_000, "ms", **_POSITIVE),
    "shared.key_ttl_s": _r(1, _WEEK_S, "seconds"),
    "shared.spend_every": _count(1, 1_000_000, "syncs"),
    # a latency profile ([profiles.NAME], [targets.NAME.prior])
    "profile.p50_ms": _MS_LATENCY,
    "profile.p90_ms": _MS_LATENCY,
    "profile.p99_ms": _MS_LATENCY,
    "profile.cold_start_ms": _MS_LATENCY,
    "profile.cold_start_probability": _fraction(),
    # [targets.NAME]: prices, capacity, sizing
    "pricing.input_per_million_usd": _r(0, 100_000, "USD per 1M tokens"),
    "pricing.output_per_million_usd": _r(0, 100_000, "USD per 1M tokens"),
    "pricing.cache_read_per_million_usd": _r(0, 100_000, "USD per 1M tokens"),
    "pricing.cache_write_per_million_usd": _r(0, 100_000, "USD per 1M tokens"),
    "pricing.hourly_usd": _r(0, 1e9, "USD per hour"),
    "capacity.tokens_per_minute": _r(0, 1e10, "tokens per minute", **_POSITIVE),
    "capacity.requests_per_second": _r(0, 1e9, "requests per second", **_POSITIVE),
    "capacity.concurrency": _count(1, 10_000_000, "calls"),
    "target.model_units": _count(1, 10_000, "model units"),
    "target.instances": _count(1, 10_000, "instances"),
    "target.hourly_usd": _r(0, 10_000_000, "USD per hour"),
    "target.hourly_usd_per_unit": _r(0, 10_000, "USD per hour"),
    "target.hourly_usd_per_instance": _r(0, 10_000, "USD per hour"),
    "target.tokens_per_minute_per_unit": _r(0, 1e6, "tokens per minute", **_POSITIVE),
    "target.requests_per_second_per_instance": _r(0, 1e5, "requests per second", **_POSITIVE),
    "target.ops_score": _r(0, 100, "points"),
    # [switcher] (mangaroute.core.policy.switcher)
    "switcher.primary_weight": _fraction(low_open=True),
    "switcher.canary_weight": _fraction(),
    "switcher.latency_threshold_ms": _SLO_MS,
    "switcher.error_rate_threshold": _fraction(),
    "switcher.capacity_threshold": _r(0, 10, "x capacity", **_POSITIVE),
    "switcher.min_requests": _REQUESTS,
    "switcher.return_after_s": _r(0, _DAY_S, "seconds"),
    "switcher.history": _count(1, 10_000, "switches"),
    "switcher.fleet_hold_s": _r(0, _DAY_S, "seconds"),
    # filters ([policies.NAME.FILTER])
    "headroom.max_utilization": _r(0, 10, "x capacity", **_POSITIVE),
    "headroom.max_throttle_rate": _fraction(low_open=True),
    "headroom.min_requests": _REQUESTS,
    "headroom.throttle_round_trip_ms": _r(0, 60_000, "ms", **_POSITIVE),
    "headroom.slo_p99_ms": _SLO_MS,
    "latency_ceiling.max_p99_ms": _SLO_MS,
    "reliable.max_error_rate": _fraction(low_open=True),
    "reliable.min_requests": _REQUESTS,
    "schedule.utc_offset_hours": _UTC_OFFSET,
    # [policies.NAME.prediction] (mangaroute.core.policy.prediction)
    "prediction.ttft_share": _fraction(),
    "prediction.avg_output_tokens": _TOKENS_OUT,
    "prediction.load_knee": _fraction(high_open=True),
    "prediction.load_weight": _r(0, 1000, "x latency"),
    "prediction.max_error_rate": _fraction(high_open=True),
    # rankers
    "score.target_p99_ms": _SLO_MS,
    "score.required_rps": _r(0, 10_000_000, "requests per second", **_POSITIVE),
    "score.max_monthly_usd": _r(0, 1e10, "USD", **_POSITIVE),
    "score.avg_input_tokens": _TOKENS_IN,
    "score.avg_output_tokens": _count(0, 1_000_000, "tokens"),
    "score.weights.latency": _r(0, 1000),
    "score.weights.throughput": _r(0, 1000),
    "score.weights.cost": _r(0, 1000),
    "score.weights.ops": _r(0, 1000),
    "cost.slo_p99_ms": _SLO_MS,
    "cost.avg_input_tokens": _TOKENS_IN,
    "cost.avg_output_tokens": _count(0, 1_000_000, "tokens"),
    "cost.avg_cache_read_tokens": _count(0, 1_000_000, "tokens"),
    "cost.avg_cache_write_tokens": _count(0, 1_000_000, "tokens"),
    "cost_under_slo.slo_p99_ms": _SLO_MS,
    "cost_under_slo.avg_input_tokens": _TOKENS_IN,
    "cost_under_slo.avg_output_tokens": _TOKENS_OUT,
    "cost_under_slo.avg_cache_read_tokens": _count(0, 1_000_000, "tokens"),
    "cost_under_slo.avg_cache_write_tokens": _count(0, 1_000_000, "tokens"),
    "cost_under_slo.paid_headroom": _r(0, 10, "x capacity", **_POSITIVE),
    # pickers
    "weighted.weight": _r(0, 1_000_000),
    "spillover.target_utilization": _r(0, 3, "x capacity", **_POSITIVE),
    "canary.share": _fraction(low_open=True, high_open=True),
    "budget_guard.daily_usd": _r(0, 1e9, "USD", **_POSITIVE),
    "budget_guard.pace": _r(0, 1_000_000),
    "budget_guard.slo_p99_ms": _SLO_MS,
    "budget_guard.utc_offset_hours": _UTC_OFFSET,
    "budget_guard.tolerance": _r(0, 100, "x the day's pace"),
    "budget_guard.slack": _r(0, 100, "x the daily budget"),
    # RoutedClient (mangaroute.invoke)
    "invoke.eject_cooldown_s": _r(0.001, _WEEK_S, "seconds"),
    "invoke.time_scale": _r(1e-6, 1e6, "real seconds per router second"),
    "hedge.after_fraction": _fraction(low_open=True, high_open=True),
    "hedge.max_ratio": _fraction(),
    "hedge.window": _count(1, 1_000_000, "calls"),
    "retry.max_per_call": _count(0, 10, "retries"),
    "retry.max_ratio": _fraction(),
    "retry.window": _count(1, 1_000_000, "calls"),
    "retry.reserve": _count(0, 1_000_000, "retries"),
    "retry.backoff_ms": _r(0, 60_000.0, "ms"),
    "retry.fast_fraction": _fraction(low_open=True),
    "retry.same_target_below": _fraction(),
    "retry.evidence_calls": _count(0, 1_000_000, "calls"),
}
"""Every numeric setting's range, keyed ``section.name`` (the TOML key, without the names of
the target or policy it sits under)."""


def violation(key: str, value: object) -> str | None:
    """Why ``value`` is not allowed for the setting ``key``, or ``None``."""
    return LIMITS[key].violation(value)


def section_names(section: str) -> list[str]:
    """The names of ``section``'s settings, in table order (``router`` -> ``window_s``, ...)."""
    prefix = f"{section}."
    return [
        key[len(prefix) :]
        for key in LIMITS
        if key.startswith(prefix) and "." not in key[len(prefix) :]
    ]


def check_fields(settings: object, section: str, names: Iterable[str] | None = None) -> None:
    """Raise :class:`RangeError` for the first attribute of ``settings`` outside its range.

    ``names`` defaults to every key of ``section`` in :data:`LIMITS`; ``None`` values (an
    optional setting left unset) pass.
    """
    prefix = f"{section}."
    for name in section_names(section) if names is None else names:
        value = getattr(settings, name)
        if value is None:
            continue
        reason = violation(prefix + name, value)
        if reason is not None:
            raise RangeError(name, reason)


DIMENSION_VALUE_MAX_CHARS = 1024


def dimension_value_violation(value: str) -> str | None:
    """Why CloudWatch cannot take ``value`` as a dimension value, or ``None`` when it can.

    A target's name is the value of the ``Target``, ``FromTarget`` and ``ToTarget``
    dimensions of every metric and alarm. CloudWatch's rule for a dimension value: ASCII
    only, no ASCII control characters, at least one character that is not whitespace, 1 to
    1,024 characters (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/
    API_Dimension.html).
    """
    for char in value:
        if not " " <= char <= "~":
            kind = "a control character" if char.isascii() else "not ASCII"
            return (
                f"holds {char!r} (U+{ord(char):04X}, {kind}): CloudWatch dimension values "
                "are printable ASCII only"
            )
    if not value.strip():
        return "is blank: a CloudWatch dimension value needs a character that is not a space"
    if len(value) > DIMENSION_VALUE_MAX_CHARS:
        return (
            f"is {len(value):,} characters long: a CloudWatch dimension value holds at most "
            f"{DIMENSION_VALUE_MAX_CHARS:,}"
        )
    return None


def check_value(key: str, value: object) -> None:
    """Raise :class:`RangeError` (naming the last part of ``key``) for a value out of range."""
    reason = violation(key, value)
    if reason is not None:
        raise RangeError(key.rsplit(".", 1)[-1], reason)
