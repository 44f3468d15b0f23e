"""The package's layers hold: each part imports only the parts below it.

``core`` (the router, policies, windows) imports nothing else of mangaroute, so it can be
read, tested and benchmarked alone; ``config`` reads TOML into core's settings; the runtime
sits on core; planning (its profiles read by ``config``'s reader) and telemetry on those;
``invoke`` (routed calls) on telemetry; the simulator,
the sidecar and the drop-in client on top; the command line (``cli`` modules, ``demo``,
``walkthrough``) over everything. Imports inside functions and under ``TYPE_CHECKING`` count
too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mangaroute"

ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "config": {"core"},
    "runtime": {"core"},
    "planning": {"core", "config"},
    "testing": {"core"},
    "telemetry": {"core", "config", "runtime"},
    "invoke": {"core", "runtime", "telemetry"},
    "shared": {"core", "config", "runtime"},
    "simulate": {"core", "config", "invoke", "planning", "shared"},
    "sidecar": {"core", "config", "runtime", "shared", "telemetry"},
    "dropin": {"core", "invoke", "telemetry"},
}
"""What each layer may import (besides itself). A package's command-line module
(``cli.py``, ``cli/``) may also import the shared CLI helpers (``mangaroute.cli``)."""

UTILITIES = {"_closing", "_text"}
"""Modules below every layer (they import nothing of mangaroute): any layer may use them."""

EXCEPTIONS: dict[tuple[str, str], str] = {}
"""Known crossings, each with its reason (none today: ``Router.default()`` builds from the
loader ``import mangaroute`` registers, so core does not import the config layer)."""


def _imports(path: Path) -> set[str]:
    """The mangaroute sub-packages ``path`` imports (``mangaroute.x.y`` -> ``x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "mangaroute" and {a.name for a in node.names} == {"__version__"}:
                continue  # the version string, not a layer
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "mangaroute":
                found.add(parts[1] if len(parts) > 1 else "mangaroute")
    return found


def _modules(layer: str) -> list[Path]:
    root = PACKAGE / layer
    files = sorted(root.rglob("*.py")) if root.is_dir() else [PACKAGE / f"{layer}.py"]
    return [f for f in files if "_generated" not in f.parts]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer: str) -> None:
    wrong = []
    for path in _modules(layer):
        relative = path.relative_to(PACKAGE).as_posix()
        is_cli = path.stem == "cli" or "cli" in path.relative_to(PACKAGE).parts[:-1]
        allowed = ALLOWED[layer] | {layer, *UTILITIES} | ({"cli"} if is_cli else set())
        for imported in sorted(_imports(path) - allowed):
            if (relative, imported) not in EXCEPTIONS:
                wrong.append(f"{relative} imports mangaroute.{imported}")
    assert not wrong, "layer crossings:\n" + "\n".join(wrong)


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    top = {"cli", "data"}  # the command line sits over everything; data holds no code
    assert packages - top <= set(ALLOWED), sorted(packages - top - set(ALLOWED))


def test_the_utilities_import_nothing_of_mangaroute() -> None:
    for name in UTILITIES:
        assert _imports(PACKAGE / f"{name}.py") == set(), name


def test_the_exceptions_are_still_needed() -> None:
    for (relative, imported), reason in EXCEPTIONS.items():
        assert imported in _imports(PACKAGE / relative), f"{relative}: no longer {reason}"
