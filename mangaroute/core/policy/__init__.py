"""Composable routing policies: filters, rankers, pickers, and the primary switcher."""

from mangaroute.core.policy.base import Filter, Picker, Policy, Ranker
from mangaroute.core.policy.budget import BudgetGuard
from mangaroute.core.policy.canary import Canary
from mangaroute.core.policy.context import Contextual, PolicyContext, SpendLedger
from mangaroute.core.policy.cost import CostUnderSlo
from mangaroute.core.policy.filters import Headroom, Healthy, LatencyCeiling
from mangaroute.core.policy.pickers import Best, PrimaryShare, Weighted
from mangaroute.core.policy.prediction import LatencyPredictor, PredictedLatency, Reliable
from mangaroute.core.policy.quality import BELOW_FLOOR, QualityFloor
from mangaroute.core.policy.rankers import (
    CheapestWithinSlo,
    ConfigOrder,
    LowestLatency,
    WeightedScore,
)
from mangaroute.core.policy.schedule import Schedule
from mangaroute.core.policy.spillover import Spillover
from mangaroute.core.policy.switcher import PrimarySwitcher, SwitcherSettings
from mangaroute.core.policy.tiers import TierOrder

__all__ = [
    "BELOW_FLOOR",
    "Best",
    "BudgetGuard",
    "Canary",
    "CheapestWithinSlo",
    "ConfigOrder",
    "Contextual",
    "CostUnderSlo",
    "Filter",
    "Headroom",
    "Healthy",
    "LatencyCeiling",
    "LatencyPredictor",
    "LowestLatency",
    "Picker",
    "Policy",
    "PolicyContext",
    "PredictedLatency",
    "PrimaryShare",
    "PrimarySwitcher",
    "QualityFloor",
    "Ranker",
    "Reliable",
    "Schedule",
    "SpendLedger",
    "Spillover",
    "SwitcherSettings",
    "TierOrder",
    "Weighted",
    "WeightedScore",
]
