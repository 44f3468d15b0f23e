"""``mangaroute demo``: routed Converse calls against a local stand-in - no AWS account.

Starts the :mod:`mangaroute.testing` stand-in with one scripted target per configured target
(latency drawn from the target's prior p50/p99), runs the router and the stand-in on one
virtual clock (``--time-scale`` real seconds per virtual second), and drives ``--requests``
chat requests of mixed classes through :meth:`RoutedClient.aconverse` with real boto3
clients, ``--concurrency`` at a time. When 35 % of the requests have started, the primary
target fails every call (``ServiceUnavailable``); at 55 % it comes back. Windows (6 s),
the breaker cool-down (2 s) and the switcher's return delay (3 s) are shortened to fit the
demo's twenty-second timeline (the header says so).

With ``--otel`` the routed calls are traced and measured by an OpenTelemetry SDK with
in-memory exporters (imported only then; exit status 2 if it is not installed), and the
spans by name and the GenAI metrics recorded are counted after the summary.

Exit status 1 if any request failed while a target of its class that was up was never
tried - a request a healthy fallback could have served; otherwise 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from mangaroute.cli.options import add_config_option, add_json_option, config_path
from mangaroute.cli.output import EXIT_FAILED, EXIT_OK, emit, guarded, run_alone, table
from mangaroute.config import load_config, load_default_config
from mangaroute.core.clock import NS_PER_S, Clock
from mangaroute.core.errors import MangarouteError
from mangaroute.core.router import Router
from mangaroute.core.settings import RouterConfig
from mangaroute.core.snapshot import RouterEvent
from mangaroute.core.targets import Pattern, Target

if TYPE_CHECKING:  # boto3 and the stand-in load when the demo runs, not with the CLI
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from mangaroute.invoke import RoutedClient
    from mangaroute.telemetry import OTelObserver, RoutingTelemetry
    from mangaroute.testing import StandIn, TargetScript

__all__ = [
    "DemoOptions",
    "OtelSdkMissing",
    "Served",
    "avoidable",
    "register",
    "run",
    "run_demo",
    "summarize",
]

_SYSTEM = [{"text": "You are MangaAssist, the assistant of a Japanese manga store."}]
_PROMPTS = (
    "Which volume of Frieren comes after volume 11?",
    "Recommend three sports manga for a new reader.",
    "Is the One Piece box set 4 in stock, and how fast can it ship?",
    "Compare the Chainsaw Man and Jujutsu Kaisen art styles.",
    "What manga is like Spy x Family but for older readers?",
)
_MIX = {"simple": 0.60, "complex": 0.25, "manga": 0.15}
_DOWN_AT, _UP_AT = 0.35, 0.55
_SAGEMAKER = (Pattern.SAGEMAKER_REALTIME, Pattern.SAGEMAKER_SERVERLESS)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    requests: int = 400
    concurrency: int = 16
    seed: int = 7
    budget_ms: float = 3000.0
    time_scale: float = 0.2
    config: str | None = None
    otel: bool = False


@dataclass(frozen=True, slots=True)
class Served:
    """One request's fate (``latency_ms`` is ``None`` when it failed)."""

    request_class: str
    phase: str
    latency_ms: float | None
    target: str | None
    failovers: int
    attempted: frozenset[str]
    down: frozenset[str]
    """Targets that were down at some time during the request."""
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    hedges: int = 0


def avoidable(served: Served, class_targets: Sequence[str]) -> bool:
    """Failed although a target of its class was up and never tried."""
    if served.latency_ms is not None:
        return False
    return bool(set(class_targets) - served.down - served.attempted)


def _demo_config(config: RouterConfig) -> RouterConfig:
    """Cool-downs of seconds, not minutes, so the recovery fits the demo's timeline."""
    window = dataclasses.replace(config.window, window_s=6.0, bucket_s=0.5)
    breaker = dataclasses.replace(config.breaker, cooldown_s=2.0, max_cooldown_s=8.0)
    switcher = config.switcher
    if switcher is not None:
        switcher = dataclasses.replace(switcher, return_after_s=3.0)
    return dataclasses.replace(config, window=window, breaker=breaker, switcher=switcher)


def _script(target: Target) -> TargetScript:
    from mangaroute.testing import Latency, TargetScript  # noqa: PLC0415 - see imports

    prior = target.prior
    latency = Latency(prior.p50_ms, prior.effective_p99_ms)
    return TargetScript(latency=latency, output_tokens=(10, 40), error_latency_ms=30.0)


@dataclass(slots=True)
class _Demo:
    """One run: the stand-in, the router, the requests and what happened to them."""

    options: DemoOptions
    config: RouterConfig
    standin: StandIn
    router: Router
    client: RoutedClient
    primary: Target
    rng: random.Random
    clock: Clock
    served: list[Served] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    down: frozenset[str] = frozenset()
    outage_s: list[float] = field(default_factory=list)
    next_index: int = 0
    start_ns: int = 0

    def now_s(self) -> float:
        return (self.clock() - self.start_ns) / NS_PER_S

    def keep(self, event: RouterEvent) -> None:
        fields = {k: v for k, v in event.to_dict().items() if k not in ("at_ns", "unix_time")}
        t_s = round((event.at_ns - self.start_ns) / NS_PER_S, 2)
        self.events.append({"t_s": t_s, "event": event.kind, **fields})

    def switch_primary(self, down: bool) -> None:
        target = self.standin.target(self.primary.model_id)
        if down:
            sagemaker = self.primary.pattern in _SAGEMAKER
            target.fail_with("ServiceUnavailable" if sagemaker else "ServiceUnavailableException")
            self.down = frozenset({self.primary.name})
        else:
            target.recover()
            self.down = frozenset()
        self.outage_s.append(round(self.now_s(), 2))

    async def worker(self) -> None:
        total = self.options.requests
        while self.next_index < total:
            index = self.next_index
            self.next_index += 1
            if index == int(total * _DOWN_AT):
                self.switch_primary(down=True)
            elif index == int(total * _UP_AT):
                self.switch_primary(down=False)
            phase = "before" if index < total * _DOWN_AT else "outage"
            phase = "after" if index >= total * _UP_AT else phase
            await self.request(phase)

    async def request(self, phase: str) -> None:
        names = list(self.router.request_classes)
        request_class = self.rng.choices(names, [_MIX.get(n, 0.1) for n in names])[0]
        prompt = self.rng.choice(_PROMPTS)
        down = self.down
        try:
            reply = await self.client.aconverse(
                messages=[{"role": "user", "content": [{"text": prompt}]}],
                system=_SYSTEM,
                inferenceConfig={"maxTokens": 200},
                request_class=request_class,
                session_id=f"session-{self.rng.randrange(50)}",
                budget_ms=self.options.budget_ms,
                input_tokens=len(prompt) // 4,
                output_tokens=100,
            )
        except Exception as exc:  # every failure is counted; the demo keeps going
            attempts = getattr(exc, "attempts", ())
            failovers = sum(a.kind.value == "failover" for a in attempts)
            tried = frozenset(a.target for a in attempts)
            error = type(exc).__name__
            self.served.append(
                Served(
                    request_class,
                    phase,
                    None,
                    None,
                    failovers,
                    tried,
                    down | self.down,
                    error,
                    hedges=sum(a.kind.value == "hedge" for a in attempts),
                )
            )
            return
        routing, usage = reply.routing, reply.get("usage", {})
        self.served.append(
            Served(
                request_class,
                phase,
                routing.latency_ms,
                routing.target,
                routing.failovers,
                frozenset(a.target for a in routing.attempts),
                down | self.down,
                input_tokens=usage.get("inputTokens", 0),
                output_tokens=usage.get("outputTokens", 0),
                hedges=sum(a.kind.value == "hedge" for a in routing.attempts),
            )
        )


def _rank(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[max(1, math.ceil(q * len(ordered))) - 1], 1)


def _group(served: Sequence[Served], budget_ms: float) -> dict[str, Any]:
    latencies = sorted(s.latency_ms for s in served if s.latency_ms is not None)
    return {
        "requests": len(served),
        "answered": len(latencies),
        "within_budget": sum(latency <= budget_ms for latency in latencies),
        "failed": len(served) - len(latencies),
        "failovers": sum(s.failovers for s in served),
        "hedges": sum(s.hedges for s in served),
        "p50_ms": _rank(latencies, 0.50),
        "p99_ms": _rank(latencies, 0.99),
        "answered_by": dict(Counter(s.target for s in served if s.target).most_common()),
    }


def summarize(
    served: Sequence[Served],
    config: RouterConfig,
    options: DemoOptions,
    duration_s: float,
) -> dict[str, Any]:
    """The final table as data: totals, per phase, per target (share and cost)."""
    classes = {c.name: c.targets for c in config.classes}
    summary = _group(served, options.budget_ms)
    summary["avoidable_failures"] = sum(avoidable(s, classes[s.request_class]) for s in served)
    summary["errors"] = dict(Counter(s.error for s in served if s.error).most_common())
    summary["phases"] = {
        phase: _group([s for s in served if s.phase == phase], options.budget_ms)
        for phase in ("before", "outage", "after")
    }
    answered = max(1, summary["answered"])
    targets = {}
    for target in config.targets:
        mine = [s for s in served if s.target == target.name]
        tokens_in = sum(s.input_tokens for s in mine)
        tokens_out = sum(s.output_tokens for s in mine)
        pricing = target.pricing
        cost = pricing.token_cost_usd(tokens_in, tokens_out)
        cost += pricing.hourly_usd * duration_s / 3600
        targets[target.name] = {
            "answered": len(mine),
            "share": round(len(mine) / answered, 4),
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cost_usd": round(cost, 6),
        }
    summary["targets"] = targets
    summary["virtual_seconds"] = round(duration_s, 2)
    return summary


class _Progress:
    """One line rewritten with ``\\r`` on a terminal; a line per 10 % otherwise."""

    def __init__(self, demo: _Demo, out: TextIO) -> None:
        self._demo = demo
        self._out = out
        self._tty = out.isatty()
        self._shown = -1

    def line(self) -> str:
        demo = self._demo
        served = demo.served
        failed = sum(s.latency_ms is None for s in served)
        state = "DOWN" if demo.down else "up"
        return (
            f"[{len(served):>5}/{demo.options.requests}] answered {len(served) - failed:>5}"
            f"  failed {failed}  failovers {sum(s.failovers for s in served):>4}"
            f"  {demo.primary.name} {state}  primary now {demo.router.primary or '-'}"
        )

    def tick(self, final: bool = False) -> None:
        done = len(self._demo.served)
        if self._tty:
            self._out.write("\r" + self.line() + ("\n" if final else ""))
        else:
            decile = done * 10 // max(1, self._demo.options.requests)
            if decile == self._shown and not final:
                return
            self._shown = decile
            self._out.write(self.line() + "\n")
        self._out.flush()

    async def run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(0.1)


async def _drive(demo: _Demo, progress: TextIO) -> None:
    display = _Progress(demo, progress)
    ticker = asyncio.create_task(display.run())
    try:
        await asyncio.gather(*(demo.worker() for _ in range(demo.options.concurrency)))
    finally:
        ticker.cancel()
    display.tick(final=True)


class OtelSdkMissing(MangarouteError, RuntimeError):
    """``--otel`` was asked for without the OpenTelemetry SDK installed."""


@dataclass(slots=True)
class _Otel:
    """The demo's OpenTelemetry SDK: providers with in-memory exporters, and what they hold."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    @classmethod
    def start(cls) -> _Otel:
        try:  # the SDK is the application's choice: only the demo's --otel needs it
            from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
            from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
                InMemorySpanExporter,
            )
        except ImportError as exc:
            raise OtelSdkMissing(
                "--otel needs the OpenTelemetry SDK: pip install opentelemetry-sdk"
            ) from exc
        spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        reader = InMemoryMetricReader()
        return cls(tracer_provider, MeterProvider(metric_readers=[reader]), spans, reader)

    def telemetry(self) -> RoutingTelemetry:
        from mangaroute.telemetry import RoutingTelemetry  # noqa: PLC0415

        return RoutingTelemetry(self.tracer_provider, self.meter_provider)

    def observer(self, config: RouterConfig) -> OTelObserver:
        from mangaroute.telemetry import OTelObserver  # noqa: PLC0415

        return OTelObserver(self.meter_provider, targets=config.targets)

    def summary(self) -> dict[str, Any]:
        """Spans by name (kind, count, errors) and GenAI metrics (series, measurements):
        counts only."""
        spans: dict[str, dict[str, Any]] = {}
        for span in self.spans.get_finished_spans():
            row = spans.setdefault(span.name, {"kind": span.kind.name, "count": 0, "errors": 0})
            row["count"] += 1
            row["errors"] += span.status.status_code.name == "ERROR"
        metrics: dict[str, dict[str, Any]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name.startswith("gen_ai."):
                        points = list(metric.data.data_points)
                        measured = sum(getattr(p, "count", 0) for p in points)
                        metrics[metric.name] = {
                            "unit": metric.unit,
                            "series": len(points),
                            "measurements": measured,
                        }
        by_name = sorted(spans.items(), key=lambda item: (item[0] != "route", item[0]))
        return {"spans": dict(by_name), "metrics": dict(sorted(metrics.items()))}

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def run_demo(options: DemoOptions, progress: TextIO) -> dict[str, Any]:
    """Run the demo; returns the summary (see :func:`summarize`)."""
    import boto3  # noqa: PLC0415 - the CLI starts without boto3
    from botocore.config import Config  # noqa: PLC0415

    from mangaroute.invoke import ClientCache, InvokeSettings, RoutedClient  # noqa: PLC0415
    from mangaroute.testing import StandIn  # noqa: PLC0415

    otel = _Otel.start() if options.otel else None
    base = load_config(options.config) if options.config else load_default_config()
    config = _demo_config(base)
    scale = options.time_scale

    def clock() -> int:
        return int(time.monotonic_ns() / scale)

    scripts = {t.model_id: _script(t) for t in config.targets}
    sagemaker = {t.model_id for t in config.targets if t.pattern in _SAGEMAKER}
    with StandIn(
        models={k: v for k, v in scripts.items() if k not in sagemaker},
        endpoints={k: v for k, v in scripts.items() if k in sagemaker},
        time_scale=scale,
        seed=options.seed,
        clock=clock,
    ) as standin:
        observer = otel.observer(config) if otel is not None else None
        router = Router(config, clock=clock, rng=random.Random(options.seed), observer=observer)
        session = boto3.session.Session(aws_access_key_id="demo", aws_secret_access_key="demo")
        pool = Config(max_pool_connections=options.concurrency * 2 + 4)
        cache = ClientCache(
            session, endpoint_url=standin.endpoint_url, config=pool, min_timeout_s=0.05 * scale
        )
        settings = InvokeSettings(time_scale=scale)
        client = RoutedClient(
            router,
            clients=cache,
            settings=settings,
            clock=clock,
            max_workers=options.concurrency * 2,
            telemetry=otel.telemetry() if otel is not None else None,
        )
        client.warm(options.budget_ms)
        primary = config.target(router.primary or config.classes[0].targets[0])
        rng = random.Random(options.seed)
        demo = _Demo(options, config, standin, router, client, primary, rng, clock)
        demo.start_ns = clock()
        router.subscribe(demo.keep)
        try:
            asyncio.run(_drive(demo, progress))
        finally:
            client.close()
            cache.close()
            if observer is not None:
                observer.close()
        duration_s = (clock() - demo.start_ns) / NS_PER_S
    summary = summarize(demo.served, config, options, duration_s)
    if otel is not None:
        summary["otel"] = otel.summary()
        otel.close()
    summary["primary"] = primary.name
    summary["outage_s"] = demo.outage_s
    summary["events"] = demo.events
    summary["settings"] = dataclasses.asdict(options)
    return summary


def _counts_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A :func:`~mangaroute.cli.output.table` with names in the first and last columns (to
    the left) and counts between them (to the right); a missing value shows as ``-``."""
    return table(rows, headers, right=range(1, len(headers) - 1), blank="-")


def _phase_row(name: str, p: dict[str, Any]) -> list[Any]:
    within = f"{p['within_budget']} ({p['within_budget'] / max(1, p['requests']):.1%})"
    by = ", ".join(f"{target} {count}" for target, count in p["answered_by"].items())
    return [
        name,
        p["requests"],
        p["answered"],
        within,
        p["failed"],
        p["failovers"],
        p["hedges"],
        p["p50_ms"],
        p["p99_ms"],
        by,
    ]


def _event_line(e: dict[str, Any]) -> str:
    if e["event"] == "switch":
        what = f"primary {e['from']} -> {e['to']} ({e['reason']})"
    else:
        what = f"breaker {e['target']}: {e['from']} -> {e['to']} ({e['reason']})"
    return f"  t={e['t_s']:>6.2f}s  {what}"


def render(summary: dict[str, Any]) -> str:
    """The final table for people."""
    options = summary["settings"]
    budget = f"{options['budget_ms'] / 1000:g} s"
    phases = [("all", summary), *summary["phases"].items()]
    headers = ["phase", "requests", "answered", f"within {budget}", "failed", "failovers", "hedges"]
    totals = _counts_table(
        [_phase_row(name, p) for name, p in phases],
        [*headers, "p50 ms", "p99 ms", "answered by"],
    )
    targets = _counts_table(
        [
            [name, t["answered"], f"{t['share']:.1%}", t["input_tokens"], t["output_tokens"], cost]
            for name, t in summary["targets"].items()
            for cost in [f"{t['cost_usd']:.4f}"]
        ],
        ["target", "answered", "share", "tokens in", "tokens out", "cost $"],
    )
    events = "\n".join(_event_line(e) for e in summary["events"]) or "  (none)"
    down, up = ([*summary["outage_s"], None, None])[:2]
    avoidable = summary["avoidable_failures"]
    verdict = (
        f"FAIL: {avoidable} request(s) failed that a healthy fallback could have served"
        if avoidable
        else "OK: no request failed while a healthy fallback was left untried"
    )
    return (
        f"mangaroute demo: {summary['requests']} chat requests of mixed classes, concurrency "
        f"{options['concurrency']}, seed {options['seed']}, budget {budget}, "
        f"time x{options['time_scale']:g} ({summary['virtual_seconds']} virtual s)\n"
        f"{summary['primary']} down at t={down}s, back at t={up}s (demo timeline: 6 s "
        "windows, breaker cool-down 2 s, primary return after 3 s; cost counts tokens plus "
        "hourly prices for the virtual duration)\n\n"
        f"{totals}\n\n{targets}\n\nEvents:\n{events}\n\n{verdict}"
    )


def render_otel(otel: dict[str, Any]) -> str:
    """What ``--otel`` recorded, for people: spans by name, GenAI metrics (counts only)."""
    spans = _counts_table(
        [[s["kind"], s["count"], s["errors"], name] for name, s in otel["spans"].items()],
        ["kind", "count", "errors", "span"],
    )
    metrics = _counts_table(
        [[name, m["series"], m["measurements"], m["unit"]] for name, m in otel["metrics"].items()],
        ["GenAI metric", "series", "measurements", "unit"],
    )
    return f"OpenTelemetry (in-memory exporters):\n{spans}\n\n{metrics}"


def handler(args: argparse.Namespace, out: TextIO) -> int:
    options = DemoOptions(
        requests=args.requests,
        concurrency=args.concurrency,
        seed=args.seed,
        budget_ms=args.budget_ms,
        time_scale=args.time_scale,
        config=config_path(args.config),
        otel=args.otel,
    )
    summary = run_demo(options, sys.stderr if args.json else out)
    emit(args, summary, lambda: _text(summary), out)
    return EXIT_FAILED if summary["avoidable_failures"] else EXIT_OK


def _text(summary: dict[str, Any]) -> str:
    otel = f"\n\n{render_otel(summary['otel'])}" if "otel" in summary else ""
    return f"\n{render(summary)}{otel}"


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def register(subparsers: Any) -> None:
    """Add ``demo`` to a CLI's sub-parsers (``handler(args, out) -> int``)."""
    help_text = (
        "drive routed Converse calls through a local Bedrock/SageMaker stand-in (no AWS "
        "account): failover while the primary is down, then its return"
    )
    parser = subparsers.add_parser("demo", help=help_text, description=help_text)
    add_config_option(parser)
    add_json_option(parser, "print the summary as JSON")
    parser.add_argument(
        "--otel",
        action="store_true",
        help="trace and measure with an OpenTelemetry SDK (in-memory exporters) and count "
        "the spans and GenAI metrics after the summary (needs opentelemetry-sdk)",
    )
    parser.add_argument("--requests", type=_positive(int), default=400, help="default 400")
    parser.add_argument("--concurrency", type=_positive(int), default=16, help="default 16")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--budget-ms",
        type=_positive(float),
        default=3000.0,
        help="answer budget per request (default 3000)",
    )
    parser.add_argument(
        "--time-scale",
        type=_positive(float),
        default=0.2,
        help="real seconds per virtual second (default 0.2)",
    )
    parser.set_defaults(handler=guarded(handler, "mangaroute demo"))


def run(argv: Sequence[str], out: TextIO | None = None) -> int:
    """``mangaroute demo`` on its own parser: ``run(["demo", "--json"])``."""
    return run_alone(register, argv, out)
