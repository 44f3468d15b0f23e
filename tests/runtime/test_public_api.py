"""The runtime's public names are pinned, and it imports only the core (layer rule)."""

from __future__ import annotations

import subprocess
import sys

import mangaroute.runtime


def test_the_runtime_exports_exactly_these_names() -> None:
    assert set(mangaroute.runtime.__all__) == {
        "PeriodicWorker",
        "RateLimitedLog",
        "SnapshotRefresher",
        "close_at_exit",
        "forget_at_exit",
        "run_safely",
    }


def test_the_runtime_imports_only_the_core() -> None:
    script = (
        "import sys\n"
        "import mangaroute\n"  # the package's own front (config and core) comes first
        "before = set(sys.modules)\n"
        "import mangaroute.runtime\n"
        "loaded = sorted(m for m in set(sys.modules) - before if m.startswith('mangaroute.')\n"
        "                and not m.startswith(('mangaroute.core', 'mangaroute.runtime')))\n"
        "heavy = sorted(m for m in ('boto3', 'grpc', 'opentelemetry') if m in sys.modules)\n"
        "print(loaded, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[] []"
