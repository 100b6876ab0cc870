"""Typed answers of the route API, parsed leniently.

The client and the server ship separately, so a newer server may add fields: unknown keys are
ignored rather than refused, and only the fields a workload needs are required.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """How a call to a provider went, as ``POST /v1/report`` takes it."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RouteProvider:
    """One provider of a route answer; ``api_base`` goes straight into an OpenAI SDK's
    ``base_url``."""

    name: str
    namespace: str
    base_url: str
    api_base: str
    model: str | None = None
    api_format: str = "openai"

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> RouteProvider:
        base_url = str(data.get("baseURL") or data.get("baseUrl") or "")
        api_base = str(data.get("apiBase") or "")
        if not api_base and base_url:
            trimmed = base_url.rstrip("/")
            api_base = trimmed if trimmed.endswith("/v1") else trimmed + "/v1"
        return cls(name=str(data.get("name", "")),
                   namespace=str(data.get("namespace") or "default"),
                   base_url=base_url, api_base=api_base, model=_str(data.get("model")),
                   api_format=str(data.get("apiFormat") or "openai"))


@dataclass(frozen=True, slots=True)
class RouteCandidate:
    """With ``explain=True``: what became of one selected provider, and why."""

    name: str
    namespace: str
    role: str
    reasons: tuple[str, ...] = ()
    detail: str = ""

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> RouteCandidate:
        raw = data.get("reasons") or ()
        return cls(name=str(data.get("name", "")), namespace=str(data.get("namespace", "")),
                   role=str(data.get("role", "")),
                   reasons=tuple(str(r) for r in raw) if isinstance(raw, list) else (),
                   detail=str(data.get("detail") or data.get("message") or ""))


@dataclass(frozen=True, slots=True)
class Route:
    """A route answer: the provider to call, ordered fallbacks, and the lease to report."""

    provider: RouteProvider
    fallbacks: tuple[RouteProvider, ...] = ()
    lease_id: str | None = None
    policy: str | None = None
    namespace: str | None = None
    strategy: str | None = None
    sticky: bool = False
    candidates: tuple[RouteCandidate, ...] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Route:
        provider = data.get("provider")
        if not isinstance(provider, Mapping):
            raise ValueError("route answer has no provider")
        fallbacks = data.get("fallbacks") or []
        candidates = data.get("candidates", data.get("explain"))
        return cls(
            provider=RouteProvider.from_wire(provider),
            fallbacks=tuple(RouteProvider.from_wire(f) for f in fallbacks
                            if isinstance(f, Mapping)),
            lease_id=_str(data.get("leaseId")),
            policy=_str(data.get("policy")),
            namespace=_str(data.get("namespace")) or provider.get("namespace"),
            strategy=_str(data.get("strategy")),
            sticky=bool(data.get("sticky", False)),
            candidates=(tuple(RouteCandidate.from_wire(c) for c in candidates
                              if isinstance(c, Mapping))
                        if isinstance(candidates, list) else None),
            raw=dict(data))

    @property
    def providers(self) -> tuple[RouteProvider, ...]:
        """The primary, then the fallbacks: the order in which to try them."""
        return (self.provider, *self.fallbacks)
