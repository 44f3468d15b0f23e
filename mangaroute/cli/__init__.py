"""The ``mangaroute`` command line.

- :mod:`mangaroute.cli.output`: what every command shares - tables, ``--json``, errors and
  exit codes, the guarded run;
- :mod:`mangaroute.cli.options`: the options more than one command takes (``--config``,
  ``--json``);
- :mod:`mangaroute.cli.routing`: the router's own commands (``config``, ``targets``,
  ``snapshot``, ``route``, ``walkthrough``);
- :mod:`mangaroute.cli.app`: the parser over every front door's ``register(subparsers)``
  (these, ``demo``, ``plan``, ``telemetry``, ``serve``, ``simulate``, ``shared``) and
  :func:`main`.

This package imports no front door when imported, so each front door imports the shared
helpers plainly; :func:`main` and :func:`build_parser` load the whole command on first use.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TextIO

from mangaroute.cli.output import UsageError, error_json

__all__ = ["UsageError", "build_parser", "error_json", "main"]


def build_parser(*, json_errors: bool = False) -> argparse.ArgumentParser:
    """The ``mangaroute`` parser (:func:`mangaroute.cli.app.build_parser`)."""
    from mangaroute.cli import app  # noqa: PLC0415 - the front doors import this package

    return app.build_parser(json_errors=json_errors)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one ``mangaroute`` command (:func:`mangaroute.cli.app.main`)."""
    from mangaroute.cli import app  # noqa: PLC0415 - the front doors import this package

    return app.main(argv, out)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
