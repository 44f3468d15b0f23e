"""Pin the planning package's public API, and keep its calculations free of the AWS SDK."""

from __future__ import annotations

import subprocess
import sys

import mangaroute.planning as planning

EXPECTED = {
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
}


def test_public_api_is_pinned() -> None:
    assert set(planning.__all__) == EXPECTED
    assert all(hasattr(planning, name) for name in planning.__all__)


def test_calculations_do_not_import_the_aws_sdk() -> None:
    code = (
        "import sys, mangaroute\n"
        "before = {'boto3', 'botocore'} & set(sys.modules)\n"
        "import mangaroute.planning.cli, mangaroute.planning.render\n"
        "print(sorted(({'boto3', 'botocore'} & set(sys.modules)) - before))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
