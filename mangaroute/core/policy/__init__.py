"""Composable routing policies: filters, rankers, pickers, and the primary switcher."""

from mangaroute.core.policy.base import Filter, Picker, Policy, Ranker
from mangaroute.core.policy.filters import Headroom, Healthy, LatencyCeiling
from mangaroute.core.policy.pickers import Best, PrimaryShare, Weighted
from mangaroute.core.policy.rankers import (
    CheapestWithinSlo,
    ConfigOrder,
    LowestLatency,
    WeightedScore,
)
from mangaroute.core.policy.switcher import PrimarySwitcher, SwitcherSettings

__all__ = [
    "Best",
    "CheapestWithinSlo",
    "ConfigOrder",
    "Filter",
    "Headroom",
    "Healthy",
    "LatencyCeiling",
    "LowestLatency",
    "Picker",
    "Policy",
    "PrimaryShare",
    "PrimarySwitcher",
    "Ranker",
    "SwitcherSettings",
    "Weighted",
    "WeightedScore",
]
