"""Planning toolkit: capacity sizing, latency-fit recommendation, TCO and auto-scaling plans.

Pure calculations (``traffic``, ``recommend``, ``tco``, ``autoscaling``) take frozen
dataclasses and return frozen dataclasses; only :mod:`mangaroute.planning.applier` talks to
AWS, through boto3 clients passed in. The CLI lives in :mod:`mangaroute.planning.cli`.
"""

from mangaroute.planning.autoscaling import (
    ApiCall,
    ScalingConfig,
    plan_to_json,
    removal_plan,
    scaling_plan,
)
from mangaroute.planning.errors import PlanningInputError
from mangaroute.planning.prices import Prices
from mangaroute.planning.profile import Profile, ProfileError, load_profile
from mangaroute.planning.recommend import (
    REFERENCE_CANDIDATES,
    Candidate,
    Dropped,
    LatencyProfile,
    Recommendation,
    Requirement,
    ScoredCandidate,
    ScoreWeights,
    cost_score,
    latency_score,
    recommend,
    throughput_score,
)
from mangaroute.planning.tco import TcoAssumptions, TcoResult, compare_tco
from mangaroute.planning.traffic import (
    CapacityAssumptions,
    CapacityPlan,
    Load,
    TrafficProfile,
    compute_load,
    size_capacity,
)

__all__ = [
    "REFERENCE_CANDIDATES",
    "ApiCall",
    "Candidate",
    "CapacityAssumptions",
    "CapacityPlan",
    "Dropped",
    "LatencyProfile",
    "Load",
    "PlanningInputError",
    "Prices",
    "Profile",
    "ProfileError",
    "Recommendation",
    "Requirement",
    "ScalingConfig",
    "ScoreWeights",
    "ScoredCandidate",
    "TcoAssumptions",
    "TcoResult",
    "TrafficProfile",
    "compare_tco",
    "compute_load",
    "cost_score",
    "latency_score",
    "load_profile",
    "plan_to_json",
    "recommend",
    "removal_plan",
    "scaling_plan",
    "size_capacity",
    "throughput_score",
]
