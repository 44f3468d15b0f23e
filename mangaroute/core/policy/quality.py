"""Quality floors: which tiers are good enough for a request class.

Targets carry a ``tier`` (``"haiku"``, ``"sonnet"``, ``"custom"``, ...). A router config may
rank the tiers from lowest to highest answer quality (``[router] quality``) and give a request
class a floor (``[classes.NAME] quality_floor``): the class's targets of that tier or a higher
one *meet the floor*, the others are below it. The seed's hybrid is the reason (Key
Takeaways: "complex queries use Sonnet (quality-first), and manga-specific queries use a
fine-tuned SageMaker model (best accuracy)"): a cheaper tier that answers in time is not the
same answer.

A target below the floor is a fallback, not a choice: the pick is made among the targets that
meet the floor - by the policy's own ranker and picker, so the cost rankers minimise cost
among them - and the targets below it follow every fallback chain. Only when no target that
meets the floor can take the call (every one was filtered out - ejected, out of headroom,
unreliable - or, per call, predicted over the budget) is the pick made below the floor, its
reason marked :data:`BELOW_FLOOR`. All of it runs when a snapshot is rebuilt: the floor wraps
the policy's picker, so the budget's and the deadline's precomputed plans respect it too and
``choose()`` does nothing more per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mangaroute.core.snapshot import PickPlan, TargetView
from mangaroute.core.targets import Target

if TYPE_CHECKING:
    from mangaroute.core.policy.base import Picker

BELOW_FLOOR = "+below_floor"
"""Appended to the reason of a pick below its class's quality floor."""


def append_fallbacks(plan: PickPlan, extra: Sequence[Target]) -> PickPlan:
    """``plan`` with ``extra`` targets appended to every slot's fallback chain."""
    tail = tuple(extra)
    if not tail:
        return plan
    return PickPlan(
        plan.targets,
        plan.reasons,
        tuple(chain + tail for chain in plan.fallbacks),
        plan.cumulative,
        plan.sticky,
        plan.rotate,
    )


def floor_tiers(quality: Sequence[str], floor: str) -> frozenset[str]:
    """The tiers that meet ``floor`` on the ladder ``quality`` (lowest quality first)."""
    return frozenset(quality[quality.index(floor) :])


def quality_problem(quality: Sequence[str], tiers: Sequence[str]) -> str | None:
    """Why a ``quality`` ladder is unusable with targets of ``tiers`` (``None``: it is fine)."""
    twice = sorted({tier for tier in quality if list(quality).count(tier) > 1})
    if twice:
        return f"names tier {twice[0]!r} twice (each tier once, lowest quality first)"
    unranked = sorted(set(tiers) - set(quality))
    if quality and unranked:
        return (
            f"does not rank tier {unranked[0]!r}, which a target has (rank every target's "
            f"tier: {', '.join(sorted(set(tiers)))})"
        )
    unknown = [tier for tier in quality if tier not in set(tiers)]
    if unknown:
        return (
            f"names tier {unknown[0]!r}, which no target has (targets' tiers: "
            f"{', '.join(sorted(set(tiers)))})"
        )
    return None


def floor_problem(floor: str, quality: Sequence[str], class_tiers: Sequence[str]) -> str | None:
    """Why ``floor`` is unusable for a class whose targets have ``class_tiers``."""
    if not quality:
        return (
            f"= {floor!r} needs a quality ladder: [router] quality = the tiers from lowest to "
            'highest quality, e.g. ["haiku", "sonnet"]'
        )
    if floor not in quality:
        return f"= {floor!r} is not a tier of [router] quality (known: {', '.join(quality)})"
    meets = floor_tiers(quality, floor)
    if not meets.intersection(class_tiers):
        return (
            f"= {floor!r}: none of the class's targets meets it (their tiers: "
            f"{', '.join(sorted(set(class_tiers)))}), so every call would be below the floor"
        )
    return None


@dataclass(frozen=True, slots=True)
class QualityFloor:
    """Picker wrapper: ``inner`` picks among the candidates whose tier is in ``tiers``; the
    rest are fallbacks after them. With none of those, ``inner`` picks among the rest and
    every reason says :data:`BELOW_FLOOR`."""

    inner: Picker
    tiers: frozenset[str]

    @property
    def name(self) -> str:
        return self.inner.name

    def plan(self, ranked: Sequence[TargetView], primary: str | None) -> PickPlan:
        tiers = self.tiers
        meets = [view for view in ranked if view.target.tier in tiers]
        if len(meets) == len(ranked):
            return self.inner.plan(ranked, primary)
        below = [view for view in ranked if view.target.tier not in tiers]
        if meets:
            plan = self.inner.plan(meets, primary)
            return append_fallbacks(plan, [view.target for view in below])
        return self.inner.plan(below, primary).marked(BELOW_FLOOR)
