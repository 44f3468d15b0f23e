"""Input errors for the planning toolkit, and the small checks that raise them.

Every error names the field it is about, so the CLI can say *which* input is wrong
(and, for a profile file, in which file) instead of failing somewhere downstream.
"""

from __future__ import annotations

import math

from mangaroute.core.errors import MangarouteError

__all__ = [
    "PlanningInputError",
    "check_at_least",
    "check_fraction",
    "check_int",
    "check_non_negative",
    "check_positive",
]


class PlanningInputError(MangarouteError, ValueError):
    """An input to a planning calculation is invalid; ``field`` names it.

    A ``MangarouteError`` like every deliberate error, so one ``except`` covers them;
    still a ``ValueError`` for callers written before that.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _finite(field: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlanningInputError(field, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise PlanningInputError(field, f"must be a finite number, got {value!r}")
    return float(value)


def check_positive(field: str, value: float) -> None:
    """Reject zero, negative, NaN and infinite values."""
    if _finite(field, value) <= 0:
        raise PlanningInputError(field, f"must be > 0, got {value!r}")


def check_non_negative(field: str, value: float) -> None:
    """Reject negative, NaN and infinite values."""
    if _finite(field, value) < 0:
        raise PlanningInputError(field, f"must be ≥ 0, got {value!r}")


def check_at_least(field: str, value: float, lower: float) -> None:
    """Reject values below ``lower`` (and NaN / infinity)."""
    if _finite(field, value) < lower:
        raise PlanningInputError(field, f"must be ≥ {lower:g}, got {value!r}")


def check_fraction(field: str, value: float) -> None:
    """Reject values outside [0, 1]."""
    if not 0.0 <= _finite(field, value) <= 1.0:
        raise PlanningInputError(field, f"must be between 0 and 1, got {value!r}")


def check_int(field: str, value: object) -> None:
    """Reject anything but a plain integer (``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanningInputError(field, f"must be an integer, got {value!r}")
