"""The ``RoutingPolicy`` kind: which providers a request may go to, and how one is picked."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from provider_router.api._meta import (
    CONDITIONS_LIST,
    Condition,
    KubeModel,
    LabelSelector,
    ObjectMeta,
)


class Strategy(StrEnum):
    ROUND_ROBIN = "RoundRobin"
    LEAST_LOADED = "LeastLoaded"
    CAPABILITY = "Capability"
    COST = "Cost"
    LATENCY = "Latency"
    PRIORITY = "Priority"
    WEIGHTED = "Weighted"

    # The seed library's spelling (``RoutingStrategy.RoundRobin``) names the same members. They
    # are plain class attributes, set below, not enum aliases: an alias would be listed again
    # in ``__members__`` (and so in the CRD's enum) and count as a member for exhaustiveness.
    RoundRobin: ClassVar[Strategy]
    LeastLoaded: ClassVar[Strategy]
    Capability: ClassVar[Strategy]
    Cost: ClassVar[Strategy]
    Latency: ClassVar[Strategy]
    Priority: ClassVar[Strategy]
    Weighted: ClassVar[Strategy]


for _member in Strategy:  # each value is its seed name: Strategy.RoundRobin = ROUND_ROBIN
    setattr(Strategy, _member.value, _member)
del _member


class Requirements(KubeModel):
    """Defaults for requests under the policy; a request's own requirements add to these."""

    capabilities: list[Annotated[str, Field(min_length=1, max_length=63)]] = Field(
        default_factory=list)
    model: Annotated[str, Field(min_length=1, max_length=253)] | None = None


class Failover(KubeModel):
    enabled: bool = True
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    cooldown_seconds: Annotated[int, Field(ge=0, le=86400)] = 30
    max_fallbacks: Annotated[int, Field(ge=0, le=20)] = 2


class BudgetWindow(StrEnum):
    HOUR = "1h"
    DAY = "24h"
    MONTH = "30d"

    @property
    def seconds(self) -> int:
        return {"1h": 3600, "24h": 86400, "30d": 30 * 86400}[self.value]


class Budget(KubeModel):
    """Spend limit over a rolling window. Past ``throttleRatio`` of it, cheaper providers go first;
    at the limit, providers that cost anything are excluded."""

    limit_usd: Annotated[float, Field(alias="limitUSD", gt=0)]
    window: BudgetWindow = BudgetWindow.DAY
    throttle_ratio: Annotated[float, Field(gt=0, le=1)] = 0.8


class StickySessions(KubeModel):
    enabled: bool = False
    ttl_seconds: Annotated[int, Field(ge=1, le=30 * 86400)] = 3600


class RoutingPolicySpec(KubeModel):
    """Which providers a request under this policy may go to, and how one of them is picked."""

    strategy: Strategy = Strategy.ROUND_ROBIN
    provider_selector: LabelSelector = Field(default_factory=LabelSelector)
    requirements: Requirements = Field(default_factory=Requirements)
    failover: Failover = Field(default_factory=Failover)
    health_check_interval_seconds: Annotated[int, Field(ge=1, le=86400)] = 30
    budget: Budget | None = None
    sticky_sessions: StickySessions = Field(default_factory=StickySessions)
    default: bool = False
    kv_cache_threshold: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.9, description="KV-cache use (0-1) past which a provider with fresh load "
        "figures ranks after those with room, under LeastLoaded and Capability.")


class ProviderCounts(KubeModel):
    selected: Annotated[int, Field(ge=0)] = 0
    healthy: Annotated[int, Field(ge=0)] = 0
    available: Annotated[int, Field(ge=0)] = 0


class RoutingPolicyStatus(KubeModel):
    """What the operator has observed for this policy: conditions, provider counts, spend."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS_LIST)
    providers: ProviderCounts | None = None
    spend_usd: float | None = Field(default=None, alias="spendUSD", ge=0)


class RoutingPolicy(KubeModel):
    """Which providers a request may go to, and how one is picked."""

    api_version: Literal["router.zoeyos.io/v1alpha1"] = "router.zoeyos.io/v1alpha1"
    kind: Literal["RoutingPolicy"] = "RoutingPolicy"
    metadata: ObjectMeta
    spec: RoutingPolicySpec = Field(default_factory=RoutingPolicySpec)
    status: RoutingPolicyStatus | None = None
