"""The ``LLMProvider`` kind: one LLM back-end that workloads may be routed to.

The spec says what the back-end is and what it may take (capabilities, models, price, limits);
the status says what the operator has learned about it (conditions, probe results, circuit).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from provider_router.api._meta import (
    CONDITIONS_LIST,
    Condition,
    KubeModel,
    ObjectMeta,
)

_URL_PATTERN = r"^https?://[^\s/?#@]+(:[0-9]{1,5})?(/[^\s]*)?$"


class ApiFormat(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OLLAMA = "ollama"
    VLLM = "vllm"
    GENERIC = "generic"


_DEFAULT_PROBE_PATHS = {
    ApiFormat.OPENAI: "/v1/models",
    ApiFormat.ANTHROPIC: "/v1/models",
    ApiFormat.OLLAMA: "/api/tags",
    ApiFormat.VLLM: "/v1/models",
    ApiFormat.GENERIC: "/v1/models",
}


def default_probe_path(api_format: ApiFormat) -> str:
    return _DEFAULT_PROBE_PATHS[api_format]


NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]


class Pricing(KubeModel):
    """USD per 1k tokens, split by direction. Either side unset falls back to
    ``costPer1kTokens``."""

    input: NonNegativeFloat | None = None
    output: NonNegativeFloat | None = None


DEFAULT_PROBE_TIMEOUT_SECONDS = 5
"""``timeoutSeconds`` when unset, unless the interval is shorter (then the interval)."""


def _default_timeout(data: dict[str, Any]) -> int:
    # Follows the interval, so that ``intervalSeconds: 2`` alone is valid. No default in the
    # CRD schema on purpose: the API server would fill in 5 and then reject it as too long.
    interval = data.get("interval_seconds")
    if not isinstance(interval, int):  # the interval itself failed validation
        return DEFAULT_PROBE_TIMEOUT_SECONDS
    return min(DEFAULT_PROBE_TIMEOUT_SECONDS, interval)


class HealthCheck(KubeModel):
    """How the operator probes the provider. ``path`` unset means the ``apiFormat``'s default;
    ``timeoutSeconds`` unset means 5 s, or the interval if that is shorter."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    # has() guards: the API server also checks the CRD's ``default: {}`` for
                    # healthCheck against this rule, before the nested defaults are filled in.
                    "rule": "!has(self.timeoutSeconds) || !has(self.intervalSeconds) || "
                            "self.timeoutSeconds <= self.intervalSeconds",
                    "message": "timeoutSeconds must not exceed intervalSeconds",
                    "fieldPath": ".timeoutSeconds",
                }
            ]
        }
    }

    enabled: bool = True
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=2048)] | None = None
    interval_seconds: Annotated[int, Field(ge=1, le=86400)] = 30
    timeout_seconds: Annotated[int, Field(ge=1, le=300)] = Field(
        default_factory=_default_timeout,
        description="Probe timeout. Unset: 5, or intervalSeconds if that is shorter; never "
                    "longer than intervalSeconds.")
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    success_threshold: Annotated[int, Field(ge=1, le=100)] = 1

    @model_validator(mode="after")
    def _timeout_fits_interval(self) -> HealthCheck:
        if self.timeout_seconds > self.interval_seconds:
            raise ValueError("timeoutSeconds must not exceed intervalSeconds")
        return self


_DEFAULT_LOAD_PATHS = {
    ApiFormat.VLLM: "/metrics",
    ApiFormat.OLLAMA: "/api/ps",
}


def default_load_path(api_format: ApiFormat) -> str | None:
    """Where a format exports its live load, or None if it exports none we can read."""
    return _DEFAULT_LOAD_PATHS.get(api_format)


class LoadMetrics(KubeModel):
    """Whether and how the operator reads the provider's own load (opt in).

    vLLM exports its running and waiting requests and its KV-cache use in Prometheus text on
    ``/metrics``; Ollama lists its loaded models on ``/api/ps``. ``path`` unset means the
    ``apiFormat``'s default; other formats have none, so they need a ``path`` to a
    vLLM-compatible export. Figures older than two intervals are ignored.
    """

    enabled: bool = False
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=2048)] | None = None
    interval_seconds: Annotated[int, Field(ge=1, le=3600)] = 5


class SecretKeyRef(KubeModel):
    """A key of a Secret in the provider's own namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253,
                               pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class LLMProviderSpec(KubeModel):
    """What the back-end is and what it may take: capabilities, models, price and limits."""

    base_url: Annotated[str, Field(alias="baseURL", pattern=_URL_PATTERN, max_length=2048,
                                   description="Root URL of the back-end, http or https.")]
    api_format: ApiFormat = ApiFormat.OPENAI
    capabilities: list[Annotated[str, Field(min_length=1, max_length=63)]] = Field(
        default_factory=list, description="What it can do: chat, embeddings, vision, ...",
        json_schema_extra={"x-kubernetes-list-type": "set"})
    models: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list, description="Models it serves. Empty means any model.",
        json_schema_extra={"x-kubernetes-list-type": "set"})
    priority: Annotated[int, Field(ge=-1000000, le=1000000)] = 0
    weight: Annotated[int, Field(ge=0, le=1000000)] = 1
    cost_per1k_tokens: Annotated[float, Field(alias="costPer1kTokens", ge=0)] = 0.0
    pricing: Pricing | None = None
    avg_latency_ms: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="A latency prior, used until the operator has measured one.")
    max_concurrent: PositiveInt | None = None
    rate_limit_rpm: PositiveInt | None = Field(default=None, alias="rateLimitRPM")
    rate_limit_tpm: PositiveInt | None = Field(default=None, alias="rateLimitTPM")
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    credentials_secret_ref: SecretKeyRef | None = None
    disabled: bool = False
    load_metrics: LoadMetrics = Field(
        default_factory=LoadMetrics,
        description="Read the provider's own live load (vLLM /metrics, Ollama /api/ps).")

    @field_validator("capabilities", "models")
    @classmethod
    def _no_duplicates(cls, values: list[str]) -> list[str]:
        seen: set[str] = set()
        dupes = sorted({v for v in values if v in seen or seen.add(v)})  # type: ignore[func-returns-value]
        if dupes:
            raise ValueError(f"duplicate entries: {', '.join(dupes)}")
        return values

    @property
    def input_cost_per1k(self) -> float:
        if self.pricing is not None and self.pricing.input is not None:
            return self.pricing.input
        return self.cost_per1k_tokens

    @property
    def output_cost_per1k(self) -> float:
        if self.pricing is not None and self.pricing.output is not None:
            return self.pricing.output
        return self.cost_per1k_tokens

    @property
    def nominal_cost_per1k(self) -> float:
        """One number to rank providers by price: the mean of input and output prices."""
        return (self.input_cost_per1k + self.output_cost_per1k) / 2

    @property
    def probe_path(self) -> str:
        return self.health_check.path or default_probe_path(self.api_format)

    @property
    def load_path(self) -> str | None:
        """The path scraped for live load, or None when this provider is not scraped."""
        if not self.load_metrics.enabled or self.disabled:
            return None
        return self.load_metrics.path or default_load_path(self.api_format)


class CircuitState(StrEnum):
    CLOSED = "Closed"
    OPEN = "Open"
    HALF_OPEN = "HalfOpen"


class ProviderHealth(KubeModel):
    """What the probes and reported outcomes have shown, as of ``lastProbeTime``."""

    last_probe_time: datetime | None = None
    latency_ms: Annotated[float, Field(ge=0)] | None = None
    ttft_ms: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Time to first token of streamed calls, as reported "
        "outcomes measured it (a moving average, rounded like latencyMs).")
    consecutive_failures: Annotated[int, Field(ge=0)] = 0
    consecutive_successes: Annotated[int, Field(ge=0)] = 0
    last_error: Annotated[str, Field(max_length=1024)] | None = None
    circuit: CircuitState = CircuitState.CLOSED
    retry_at: datetime | None = None


class LLMProviderStatus(KubeModel):
    """What the operator has learned about the back-end: conditions, probe results, circuit."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS_LIST)
    health: ProviderHealth | None = None
    models: list[Annotated[str, Field(max_length=253)]] | None = Field(
        default=None, max_length=256,
        description="Models the provider listed when last probed, sorted; a provider whose "
        "spec lists none serves these.")


class LLMProvider(KubeModel):
    """One LLM back-end that workloads may be routed to."""

    api_version: Literal["router.zoeyos.io/v1alpha1"] = "router.zoeyos.io/v1alpha1"
    kind: Literal["LLMProvider"] = "LLMProvider"
    metadata: ObjectMeta
    spec: LLMProviderSpec
    status: LLMProviderStatus | None = None
