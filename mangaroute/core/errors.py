"""The exceptions mangaroute raises, one hierarchy rooted at :class:`MangarouteError`.

Callers catch :class:`MangarouteError` for everything, or a subclass for one case. Input
errors (:class:`InvalidObservation`, :class:`UnknownTarget`, :class:`UnknownRequestClass`) are
also ``ValueError``/``LookupError`` so generic handlers keep working; the gRPC sidecar maps
them to ``INVALID_ARGUMENT``. Raising one of them never changes the router's state.
"""

from __future__ import annotations


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
        super().__init__(f"unknown target {name!r}; known targets: {', '.join(known)}")

    def __str__(self) -> str:  # LookupError would otherwise print repr(args)
        return str(self.args[0])


class UnknownRequestClass(MangarouteError, LookupError):
    """``choose()`` was asked for a request class that the config does not define."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown request class {name!r}; configured classes: {', '.join(known)}")

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidRequest(MangarouteError, ValueError):
    """A routing request carries an invalid field (negative budget, negative tokens, ...)."""
