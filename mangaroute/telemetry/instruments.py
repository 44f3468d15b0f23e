"""mangaroute's OpenTelemetry instrumentation scope and the instruments recorded in it.

Every tracer and meter mangaroute asks for carries the same scope - name, version and the
semantic-conventions schema URL - so :func:`mangaroute_tracer` and :func:`mangaroute_meter` are
the one place that names it. An :class:`Instrument` declares a metric once (name, unit,
description, the conventions' bucket advice) and makes the instrument from a meter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter

from mangaroute import __version__
from mangaroute.telemetry import semconv as sc

__all__ = ["SCHEMA_URL", "Instrument", "mangaroute_meter", "mangaroute_tracer"]

SCHEMA_URL = "https://opentelemetry.io/schemas/1.40.0"
"""The semantic-conventions release whose names the spans and metrics use: 1.37 renamed
``gen_ai.system`` to ``gen_ai.provider.name``; the prompt-cache usage attributes (and
``gen_ai.usage.input_tokens`` counting cached tokens) came with 1.40."""

Callback = Callable[[CallbackOptions], Iterable[metrics.Observation]]


def mangaroute_tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The tracer of mangaroute's scope from ``provider`` (default: the global one)."""
    return trace.get_tracer(
        sc.INSTRUMENTATION_NAME, __version__, tracer_provider=provider, schema_url=SCHEMA_URL
    )


def mangaroute_meter(provider: metrics.MeterProvider | None = None) -> Meter:
    """The meter of mangaroute's scope from ``provider`` (default: the global one)."""
    return metrics.get_meter(
        sc.INSTRUMENTATION_NAME, __version__, meter_provider=provider, schema_url=SCHEMA_URL
    )


@dataclass(frozen=True, slots=True)
class Instrument:
    """One metric as the exporters see it; ``buckets`` is the conventions' explicit bucket
    advice for a histogram."""

    name: str
    unit: str
    description: str
    buckets: Sequence[float] | None = None

    def counter(self, meter: Meter) -> Counter:
        return meter.create_counter(self.name, unit=self.unit, description=self.description)

    def histogram(self, meter: Meter) -> Histogram:
        return meter.create_histogram(
            self.name,
            unit=self.unit,
            description=self.description,
            explicit_bucket_boundaries_advisory=self.buckets,
        )

    def observable_counter(self, meter: Meter, callback: Callback) -> None:
        meter.create_observable_counter(
            self.name, callbacks=[callback], unit=self.unit, description=self.description
        )

    def observable_gauge(self, meter: Meter, callback: Callback) -> None:
        meter.create_observable_gauge(
            self.name, callbacks=[callback], unit=self.unit, description=self.description
        )


# -- the GenAI conventions' client metrics ---------------------------------------------------
OPERATION_DURATION = Instrument(
    sc.METRIC_OPERATION_DURATION, "s", "GenAI operation duration.", sc.DURATION_BUCKETS_S
)
TOKEN_USAGE = Instrument(
    sc.METRIC_TOKEN_USAGE, "{token}", "Number of input and output tokens used.", sc.TOKEN_BUCKETS
)
TIME_TO_FIRST_CHUNK = Instrument(
    sc.METRIC_TIME_TO_FIRST_CHUNK,
    "s",
    "Time to receive the first chunk of a streamed response.",
    sc.DURATION_BUCKETS_S,
)

# -- mangaroute's own ---------------------------------------------------------------------
DECISIONS = Instrument(sc.METRIC_DECISIONS, "{decision}", "Routing decisions handed out.")
FAILOVERS = Instrument(
    sc.METRIC_FAILOVERS,
    "{attempt}",
    "Attempts started on a fallback target (failover) or beside a running one (hedge).",
)
SPEND = Instrument(
    sc.METRIC_SPEND, "USD", "Token cost of the recorded calls (target token prices x tokens)."
)
CACHE_TOKENS = Instrument(
    sc.METRIC_CACHE_TOKENS,
    "{token}",
    "Prompt-cache input tokens read (kind=read) and written (kind=write).",
)
SWITCHES = Instrument(sc.METRIC_SWITCHES, "{switch}", "Primary target switches.")
RELOADS = Instrument(
    sc.METRIC_RELOADS,
    "{reload}",
    "Config reloads, by result (accepted, or rejected: the old one serves).",
)
BREAKER_TRANSITIONS = Instrument(
    sc.METRIC_BREAKER_TRANSITIONS, "{transition}", "Breaker state changes."
)
BREAKER_STATE = Instrument(
    sc.METRIC_BREAKER_STATE, "1", "1 for the state each target's breaker is in, 0 for the others."
)
DROPPED = Instrument(
    sc.METRIC_DROPPED,
    "{measurement}",
    "Measurements dropped because the telemetry buffer was full.",
)
