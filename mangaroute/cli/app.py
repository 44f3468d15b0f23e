"""The ``mangaroute`` command: one parser over every front door's ``register``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TextIO

from mangaroute import __version__
from mangaroute.cli import routing
from mangaroute.cli.output import JsonErrorParser, run_parsed
from mangaroute.demo import register as register_demo
from mangaroute.planning.cli import register as register_plan
from mangaroute.shared.cli import register as register_shared
from mangaroute.sidecar.cli import register as register_serve
from mangaroute.simulate.cli import register as register_simulate
from mangaroute.telemetry.cli import register as register_telemetry

__all__ = ["build_parser", "main"]

FRONT_DOORS = (
    routing.register,
    register_demo,
    register_plan,
    register_telemetry,
    register_serve,
    register_simulate,
    register_shared,
)
"""Each adds its commands to the top-level sub-parsers, in the order ``--help`` lists them."""


def build_parser(*, json_errors: bool = False) -> argparse.ArgumentParser:
    """The ``mangaroute`` parser; ``json_errors``: usage errors raise
    (:class:`~mangaroute.cli.output.UsageError`, for :func:`main` to report as JSON) instead
    of printing and exiting."""
    return _build(JsonErrorParser if json_errors else argparse.ArgumentParser)


def _build(parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = parser_class(
        prog="mangaroute",
        description="Route foundation-model calls across AWS deployment targets (Bedrock "
        "provisioned and on-demand, SageMaker) by latency, health, capacity and "
        "cost. Every command works offline on the shipped MangaAssist config.",
    )
    parser.add_argument("--version", action="version", version=f"mangaroute {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in FRONT_DOORS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command. Under ``--json`` a failure is a JSON object on stdout
    (:func:`~mangaroute.cli.output.error_json`) instead of text on stderr; the exit code is
    the same (:mod:`mangaroute.cli.output`)."""
    return run_parsed(_build, argv, out)
