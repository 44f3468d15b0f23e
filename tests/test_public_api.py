"""The public API is declared once and pinned; the core imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import mangaroute

EXPECTED = {
    "SEED_PROFILES",
    "BreakerPolicy",
    "BreakerState",
    "Capacity",
    "Clock",
    "ConfigError",
    "Decision",
    "FakeClock",
    "InvalidObservation",
    "InvalidRequest",
    "LatencyProfile",
    "MangarouteError",
    "NoSwitcher",
    "Observation",
    "Outcome",
    "Pattern",
    "Pricing",
    "RequestClass",
    "RoutedCall",
    "Router",
    "RouterConfig",
    "Snapshot",
    "SwitchEvent",
    "Target",
    "TargetView",
    "UnknownRequestClass",
    "UnknownTarget",
    "WindowSettings",
    "__version__",
    "classify_exception",
    "default_config_text",
    "load_config",
    "load_default_config",
    "monotonic_clock",
    "parse_config",
    "BreakerEvent",
    "RouterEvent",
    "AdminEvent",
    "Pin",
    "ReloadEvent",
    "bedrock_runtime",
    "context",
    "routed_session",
}


def test_all_is_pinned() -> None:
    assert set(mangaroute.__all__) == EXPECTED
    for name in mangaroute.__all__:
        assert hasattr(mangaroute, name), name


def test_the_core_imports_no_adapter_library() -> None:
    code = (
        "import sys, mangaroute, mangaroute.core.router, mangaroute.config\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'grpc', 'opentelemetry', 'moto')]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_the_package_is_typed() -> None:
    assert resources.files("mangaroute").joinpath("py.typed").is_file()
