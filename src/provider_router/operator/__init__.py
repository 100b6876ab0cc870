"""The Kopf operator: LLMProvider and RoutingPolicy resources into the live routing table,
provider health into status conditions, and the route API, all in one process."""

from provider_router.operator._conditions import (
    Acceptance,
    Verdict,
    merge_conditions,
    policy_verdicts,
    provider_verdicts,
    saturation_verdict,
)
from provider_router.operator._runner import Operator, OperatorOptions, run, run_operator

__all__ = [
    "Acceptance",
    "Operator",
    "OperatorOptions",
    "Verdict",
    "merge_conditions",
    "policy_verdicts",
    "provider_verdicts",
    "run",
    "run_operator",
    "saturation_verdict",
]
