"""Helpers shared by the engine's tests: a hand-driven clock and terse spec builders."""

from __future__ import annotations

from typing import Any

from provider_router.api import LLMProviderSpec, RoutingPolicySpec
from provider_router.engine import RouteRequest, RoutingTable


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def provider(**fields: Any) -> LLMProviderSpec:
    """A provider spec from wire-style fields, with a base URL filled in."""
    fields.setdefault("baseURL", "http://127.0.0.1:9")
    return LLMProviderSpec.model_validate(fields)


def policy(**fields: Any) -> RoutingPolicySpec:
    fields.setdefault("default", True)
    return RoutingPolicySpec.model_validate(fields)


def pick(table: RoutingTable, **fields: Any) -> str:
    """Route once in namespace ``ns`` without a lease; the primary's name."""
    fields.setdefault("namespace", "ns")
    fields.setdefault("lease", False)
    return table.route(RouteRequest(**fields)).target.provider.name


def picks(table: RoutingTable, count: int, **fields: Any) -> list[str]:
    return [pick(table, **fields) for _ in range(count)]
