"""The core install (no ``sidecar`` extra) works: nothing outside the sidecar needs gRPC.

A fresh venv per test run is too slow, so a child interpreter gets a ``sys.meta_path``
finder (a ``sitecustomize`` on ``PYTHONPATH``) that makes gRPC and protobuf unimportable,
as they are after ``pip install mangaroute``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mangaroute.sidecar import require_grpc

BLOCKER = textwrap.dedent(
    """
    import sys

    _BLOCKED = ("grpc", "grpc_health", "grpc_reflection", "google.protobuf")


    class _NoSidecarExtra:
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in _BLOCKED):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    sys.meta_path.insert(0, _NoSidecarExtra())
    """
)

# Every public module a core-install user reaches (the sidecar package itself is lazy).
CORE_MODULES = [
    "mangaroute",
    "mangaroute.sidecar",
    "mangaroute.core.router",
    "mangaroute.invoke",
    "mangaroute.planning",
    "mangaroute.simulate",
    "mangaroute.telemetry",
    "mangaroute.shared",
    "mangaroute.config",
    "mangaroute.cli",
]


@pytest.fixture(scope="module")
def lean_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("lean-site")
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_the_blocker_really_hides_grpc(lean_env: dict[str, str]) -> None:
    done = _run(lean_env, "-c", "import grpc")
    assert done.returncode == 1
    assert "No module named 'grpc'" in done.stderr


def test_core_modules_import_without_grpc(lean_env: dict[str, str]) -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        "from mangaroute import Router\n"
        "leaked = [m for m in sys.modules if m == 'grpc' or m.startswith('google.protobuf')]\n"
        "assert not leaked, leaked\n"
        "print('ok')\n"
    )
    done = _run(lean_env, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_simulate_help_works_without_grpc(lean_env: dict[str, str]) -> None:
    done = _run(lean_env, "-m", "mangaroute", "simulate", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_serve_without_the_extra_exits_2_with_the_install_line(lean_env: dict[str, str]) -> None:
    done = _run(lean_env, "-m", "mangaroute", "serve", "--listen", "127.0.0.1:0")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "pip install 'mangaroute[sidecar]'" in done.stderr
    assert "grpcio" in done.stderr
    assert "Traceback" not in done.stderr


def test_python_m_sidecar_without_the_extra_exits_2(lean_env: dict[str, str]) -> None:
    done = _run(lean_env, "-m", "mangaroute.sidecar", "--listen", "127.0.0.1:0")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "pip install 'mangaroute[sidecar]'" in done.stderr


def test_require_grpc_passes_with_the_extra_installed() -> None:
    require_grpc()
