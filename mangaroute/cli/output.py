"""What every ``mangaroute`` command shares: its tables, its ``--json`` output, how it fails
and with which exit code. Each front door (``cli.routing``, ``planning.cli``,
``telemetry.cli``, ``simulate.cli``, ``shared.cli``, ``demo``, ``sidecar.cli`` for ``serve``
and ``admin``) registers its sub-commands with a ``register(subparsers)`` function and
formats and fails through this module.

Exit codes, the same for every command:

- :data:`EXIT_OK` (0): done.
- :data:`EXIT_FAILED` (1): the input was fine and something outside failed the command: an
  AWS call, an unreachable Redis (:class:`CommandFailed`), or the demo's avoidable failures.
- :data:`EXIT_USAGE` (2): the input is wrong: the command line, a config file, a planning
  profile, a scenario, a missing optional package - any :class:`MangarouteError`.

How a failure reads: without ``--json``, one line on stderr, ``<command>: error: <message>``
for wrong input and ``<command>: <what failed>`` for a failure; with ``--json``, the JSON
object of :func:`error_json` on stdout (nothing on stderr), with the same exit code and the
same message. ``<command>`` is ``mangaroute`` for the top-level commands, ``simulate`` and
``shared``, and names the command for ``plan <command>``, ``telemetry`` and ``demo``.

Where the front doors used to disagree, one rule now holds (and the ones that differed
changed): ``--json`` failures are JSON in ``plan``, ``telemetry``, ``demo`` and ``shared
status`` too, not only in the top-level commands; ``shared status`` says an unreachable
Redis on stderr (it used stdout); the demo's missing OpenTelemetry SDK reads ``mangaroute
demo: error: ...`` like every input error, and so does a bad config given to the demo (it
read ``mangaroute: error: ...``); a message about a flag no longer starts with ``<config>``
on stderr (the JSON object never showed it); JSON keeps non-ASCII text readable (UTF-8, as
``plan`` and ``telemetry`` printed it) instead of ``\\u`` escapes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Container, Sequence
from typing import Any, NoReturn, TextIO

from mangaroute._text import text_table
from mangaroute.core.errors import ConfigError, MangarouteError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandFailed",
    "Handler",
    "JsonErrorParser",
    "UsageError",
    "emit",
    "error_json",
    "exit_code",
    "guarded",
    "print_usage",
    "run_alone",
    "run_parsed",
    "table",
    "write_json",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace, TextIO], int]
"""What a leaf command's parser sets as ``handler``: run with the parsed arguments, write
to ``out``, return the exit code."""


# -- output -----------------------------------------------------------------------------------


def table(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    *,
    right: Container[int] | None = None,
    blank: str = "",
) -> str:
    """Rows under headers, columns aligned (:func:`mangaroute._text.text_table`). ``right``:
    the column indexes to right-align, by default those holding only numbers; ``None``
    cells print as ``blank``."""
    cells = [[blank if v is None else str(v) for v in r] for r in rows]
    if right is None:
        right = {i for i in range(len(headers)) if rows and all(_is_number(r[i]) for r in rows)}
    return text_table([str(h) for h in headers], cells, right)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def write_json(data: Any, out: TextIO) -> None:
    """``data`` as indented JSON and a newline, non-ASCII text kept readable."""
    json.dump(data, out, indent=2, ensure_ascii=False)
    out.write("\n")


def emit(args: argparse.Namespace, data: Any, text: Callable[[], str], out: TextIO) -> None:
    """``data`` as JSON under ``--json``, else ``text()`` (only called then) and a newline."""
    if getattr(args, "json", False):
        write_json(data, out)
    else:
        out.write(text() + "\n")


# -- errors -----------------------------------------------------------------------------------


class CommandFailed(MangarouteError):
    """The input was fine and a service the command called failed it (an AWS call, Redis):
    exit :data:`EXIT_FAILED`, the message says what failed."""


class UsageError(MangarouteError):
    """A command line argparse rejected, raised instead of printed so ``--json`` can report
    it as JSON."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class JsonErrorParser(argparse.ArgumentParser):
    """The parser class for a command line that asks for ``--json``: a usage error raises
    :class:`UsageError` (reported as JSON) instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def exit_code(exc: BaseException) -> int:
    """The exit code a failed command returns for ``exc``."""
    return EXIT_FAILED if isinstance(exc, CommandFailed) else EXIT_USAGE


_FLAG = re.compile(r"^(?:argument )?(--[a-z0-9][a-z0-9-]*)\b")


def error_json(exc: BaseException) -> dict[str, Any]:
    """A failed command's error as a JSON object: the message, the input it is about
    (``field``: a config key, a flag, a planning input; ``None`` when it names none), the
    file it is in when there is one (a config file, a planning profile), and the error's
    type."""
    message = str(exc)
    field: str | None = getattr(exc, "field", None)
    source = getattr(exc, "source", None)  # a config file, a planning profile, a flag
    file: str | None = None
    if isinstance(exc, ConfigError):
        field = field or exc.key or None
    if source == "<config>":  # not from a file: a flag or a value
        message = message.removeprefix("<config> ")
    elif isinstance(source, str) and source.startswith("--"):
        field = field or source
    elif isinstance(source, str):
        file = source
    if isinstance(exc, UsageError):
        message = exc.message
    if field is None:
        found = _FLAG.match(message)
        field = found.group(1) if found else None
    return {"error": message, "field": field, "file": file, "type": type(exc).__name__}


def _report(exc: BaseException, prog: str, as_json: bool, out: TextIO) -> int:
    found = error_json(exc)
    if as_json:
        write_json(found, out)
    else:
        kind = "" if isinstance(exc, CommandFailed) else "error: "
        print(f"{prog}: {kind}{found['error']}", file=sys.stderr)
    return exit_code(exc)


def guarded(
    handler: Handler,
    prog: str = "mangaroute",
    errors: tuple[type[Exception], ...] = (MangarouteError,),
) -> Handler:
    """``handler`` with its failures reported instead of raised: a :class:`MangarouteError`
    (or one of ``errors``) becomes one line on stderr naming ``prog``, or under ``--json`` the
    :func:`error_json` object on stdout, and its :func:`exit_code`. No traceback."""

    caught: tuple[type[Exception], ...] = (MangarouteError, *errors)

    def run(args: argparse.Namespace, out: TextIO) -> int:
        try:
            return handler(args, out)
        except caught as exc:
            return _report(exc, prog, bool(getattr(args, "json", False)), out)

    return run


def print_usage(parser: argparse.ArgumentParser) -> Handler:
    """The handler of a command group run without a sub-command: its help on stderr, exit
    :data:`EXIT_USAGE`."""

    def usage(args: argparse.Namespace, out: TextIO) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    return usage


# -- running a command line -------------------------------------------------------------------


def run_parsed(
    build: Callable[[type[argparse.ArgumentParser]], argparse.ArgumentParser],
    argv: Sequence[str] | None,
    out: TextIO | None,
    prog: str = "mangaroute",
) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) with the parser ``build(parser_class)``
    makes and run the chosen command's handler, failures reported by :func:`guarded`.
    With ``--json`` on the command line a usage error is a JSON object too; without, argparse
    prints it and exits 2 (``SystemExit``), as for ``--help``."""
    words = list(sys.argv[1:] if argv is None else argv)
    stream = out or sys.stdout
    as_json = "--json" in words
    parser = build(JsonErrorParser if as_json else argparse.ArgumentParser)
    try:
        args = parser.parse_args(words)
    except UsageError as exc:
        return _report(exc, prog, True, stream)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        return print_usage(parser)(args, stream)
    try:
        return guarded(handler, prog)(args, stream)
    except BrokenPipeError:  # pragma: no cover - `mangaroute ... | head`
        return EXIT_OK


def run_alone(
    register: Callable[[Any], object], argv: Sequence[str], out: TextIO | None = None
) -> int:
    """One front door behind its own ``mangaroute`` parser, for tests and scripts:
    ``run_alone(register, ["plan", "tco", "--json"])``. Behaves as :func:`run_parsed`, and
    returns argparse's exit code (2 on a usage error, 0 for ``--help``) instead of exiting."""

    def build(parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
        parser = parser_class(prog="mangaroute")
        register(parser.add_subparsers(dest="command", metavar="COMMAND"))
        return parser

    try:
        return run_parsed(build, argv, out)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
