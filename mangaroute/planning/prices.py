"""USD prices the plans are computed with — every one an input, the seed's figures as defaults.

Source: seed §3.1 (TCO model) and §2.2 (``estimated_hourly_cost``). AWS list prices change
and differ by region and commitment term; check the Bedrock, SageMaker and Lambda pricing
pages for ap-northeast-1 before relying on a total.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from mangaroute.planning.errors import check_non_negative

__all__ = ["Prices"]

_PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Prices:
    """Unit prices in USD.

    - Claude 3 Haiku on demand: $0.25 / $1.25 per 1M input / output tokens; Claude 3
      Sonnet: $3 / $15 (seed header and §3.1).
    - Bedrock provisioned throughput, per model unit and hour: Sonnet $23, Haiku $5
      (seed §2.2 ``estimated_hourly_cost`` and §3.1).
    - SageMaker ml.g5.2xlarge real-time instance: $1.89/h (seed §3.1).
    - Lambda: $0.0000167 per GB-second and $0.20 per 1M requests (seed §3.1; AWS lists
      $0.0000166667 per GB-s for x86).
    - Engineer time: $100/h. The seed states no rate; its §"Key Takeaways" says 12 h/month
      of SageMaker operations "adds $1,200-2,400/month", i.e. $100-200/h — we take the low end.
    """

    haiku_input_per_mtok: float = 0.25
    haiku_output_per_mtok: float = 1.25
    sonnet_input_per_mtok: float = 3.0
    sonnet_output_per_mtok: float = 15.0
    sonnet_mu_hourly: float = 23.0
    haiku_mu_hourly: float = 5.0
    sagemaker_instance_hourly: float = 1.89
    lambda_gb_second: float = 0.0000167
    lambda_per_million_requests: float = 0.20
    engineer_hourly: float = 100.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_non_negative(f.name, getattr(self, f.name))

    def haiku_message_usd(self, input_tokens: float, output_tokens: float) -> float:
        """On-demand Haiku token cost of one message."""
        return (
            input_tokens * self.haiku_input_per_mtok + output_tokens * self.haiku_output_per_mtok
        ) / _PER_MILLION

    def sonnet_message_usd(self, input_tokens: float, output_tokens: float) -> float:
        """On-demand Sonnet token cost of one message."""
        return (
            input_tokens * self.sonnet_input_per_mtok + output_tokens * self.sonnet_output_per_mtok
        ) / _PER_MILLION
