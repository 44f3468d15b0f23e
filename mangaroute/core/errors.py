"""The exceptions mangaroute raises, one hierarchy rooted at :class:`MangarouteError`.

Callers catch :class:`MangarouteError` for everything, or a subclass for one case. Input
errors (:class:`InvalidObservation`, :class:`UnknownTarget`, :class:`UnknownRequestClass`) are
also ``ValueError``/``LookupError`` so generic handlers keep working; the gRPC sidecar maps
them to ``INVALID_ARGUMENT``. Raising one of them never changes the router's state.

A message quotes the offending value through :func:`echo`, which keeps at most
:data:`ECHO_CHARS` characters of it: a caller's 16 KB target name must not come back as a
16 KB message (over gRPC, a status message that large exceeds the metadata limit and turns
``INVALID_ARGUMENT`` into ``RESOURCE_EXHAUSTED``).
"""

from __future__ import annotations

ECHO_CHARS = 64
"""How many characters of a bad value an error message quotes."""


def echo(value: object) -> str:
    """``value`` as an error message quotes it: its ``repr``, cut to the first
    :data:`ECHO_CHARS` characters of the value followed by ``... (N characters)`` when it is
    longer. A string is measured and cut before quoting; any other value by its ``repr``."""
    if isinstance(value, str):
        if len(value) <= ECHO_CHARS:
            return repr(value)
        return f"{value[:ECHO_CHARS]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) <= ECHO_CHARS:
        return text
    return f"{text[:ECHO_CHARS]}... ({len(text)} characters)"


def counts_error(what: str, **counts: object) -> str:
    """The message for ``counts`` that are not all integers >= 0 (``"token counts must be
    integers >= 0, got input_tokens=-1, output_tokens=0"``), naming every count of the group
    so the bad one is seen beside the others; ``""`` when they all are."""
    if all(type(count) is int and count >= 0 for count in counts.values()):
        return ""
    got = ", ".join(f"{name}={echo(count)}" for name, count in counts.items())
    return f"{what} must be integers >= 0, got {got}"


class MangarouteError(Exception):
    """Base class of every error mangaroute raises on purpose."""


class ConfigError(MangarouteError, ValueError):
    """A configuration file or value is invalid; the message names the file and the key."""

    def __init__(self, message: str, *, source: str = "<config>", key: str = "") -> None:
        self.source = source
        self.key = key
        where = f"{source}: [{key}]" if key else source
        super().__init__(f"{where} {message}")


class InvalidObservation(MangarouteError, ValueError):
    """An outcome passed to ``record()`` is malformed (NaN, negative, wrong type, ...)."""


class UnknownTarget(MangarouteError, LookupError):
    """A target name (or a decision from another router) that this router does not know."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown target {echo(name)}; known targets: {', '.join(known)}")

    def __str__(self) -> str:  # LookupError would otherwise print repr(args)
        return str(self.args[0])


class UnknownRequestClass(MangarouteError, LookupError):
    """``choose()`` was asked for a request class that the config does not define."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"unknown request class {echo(name)}; configured classes: {', '.join(known)}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidRequest(MangarouteError, ValueError):
    """A routing request carries an invalid field (negative budget, negative tokens, ...)."""


class NoSwitcher(InvalidRequest):
    """Pinning or unpinning the primary on a router whose config has no ``[switcher]``: the
    request is well formed, the router cannot do it (the sidecar answers
    ``FAILED_PRECONDITION``)."""
