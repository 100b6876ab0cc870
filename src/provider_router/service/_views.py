"""JSON views of engine objects: route answers, providers and policies.

Route answers are built on every request, so each engine ``Target`` (the engine keeps one per
provider and model) is encoded once and its bytes reused: an answer is then a join of cached
fragments plus the lease id. Listing views are built per call; they are for humans and
dashboards, not for the hot path.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from provider_router.api import Strategy
from provider_router.engine import (
    Block,
    Candidate,
    PolicyState,
    ProviderState,
    RouteDecision,
    RoutingTable,
    Target,
    load_view,
    reasons,
)

MAX_CACHED_TARGETS = 16_384


class TargetCache:
    """Dicts of targets, keyed by the identity of the engine's (immutable) ``Target``."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Target, dict[str, Any]]] = {}

    def get(self, target: Target) -> dict[str, Any]:
        hit = self._cache.get(id(target))
        # Holding the target keeps its id from being reused while the entry exists.
        if hit is not None and hit[0] is target:
            return hit[1]
        view = target.provider
        out = {"name": view.name, "namespace": view.namespace, "baseURL": view.base_url,
               "apiBase": view.api_base, "model": target.model,
               "apiFormat": view.api_format.value}
        if len(self._cache) >= MAX_CACHED_TARGETS:
            self._cache.clear()
        self._cache[id(target)] = (target, out)
        return out


class RouteEncoder:
    """Route answers as JSON bytes, assembled from cached fragments.

    Equal to ``orjson.dumps(decision_view(...))`` (a test holds it to that), about twice as
    fast, which matters on the one endpoint that must keep up with a bare HTTP server.
    """

    __slots__ = ("_fragments", "_tails", "targets")

    def __init__(self, targets: TargetCache) -> None:
        self.targets = targets
        self._fragments: dict[int, tuple[Target, bytes]] = {}
        self._tails: dict[tuple[str, str, Strategy, bool], bytes] = {}

    def encode(self, decision: RouteDecision) -> bytes:
        if decision.candidates is not None:
            return orjson.dumps(decision_view(decision, self.targets))
        fragment = self._fragment
        # The Strategy member itself, not its .value: a StrEnum is its own string (and orjson
        # writes it as one), while reading .value is a Python property call on every route.
        key = (decision.policy, decision.namespace, decision.strategy, decision.sticky)
        tail = self._tails.get(key)
        if tail is None:
            if len(self._tails) >= MAX_CACHED_TARGETS:
                self._tails.clear()
            # '"policy":...,"sticky":...}' without the opening brace, to follow the lease id.
            tail = self._tails[key] = orjson.dumps({
                "policy": decision.policy, "namespace": decision.namespace,
                "strategy": decision.strategy, "sticky": decision.sticky})[1:]
        return b"".join((b'{"provider":', fragment(decision.target), b',"fallbacks":[',
                         b",".join([fragment(t) for t in decision.fallbacks]),
                         b'],"leaseId":', orjson.dumps(decision.lease_id), b",", tail))

    def _fragment(self, target: Target) -> bytes:
        hit = self._fragments.get(id(target))
        if hit is not None and hit[0] is target:
            return hit[1]
        encoded = orjson.dumps(self.targets.get(target))
        if len(self._fragments) >= MAX_CACHED_TARGETS:
            self._fragments.clear()
        self._fragments[id(target)] = (target, encoded)
        return encoded


def candidate_view(candidate: Candidate) -> dict[str, Any]:
    return {"name": candidate.name, "namespace": candidate.namespace,
            "role": candidate.role.value, "reasons": list(candidate.reasons),
            "detail": candidate.detail}


def decision_view(decision: RouteDecision, targets: TargetCache) -> dict[str, Any]:
    out: dict[str, Any] = {
        "provider": targets.get(decision.target),
        "fallbacks": [targets.get(t) for t in decision.fallbacks],
        "leaseId": decision.lease_id,
        "policy": decision.policy,
        "namespace": decision.namespace,
        "strategy": decision.strategy.value,
        "sticky": decision.sticky,
    }
    if decision.candidates is not None:
        out["candidates"] = [candidate_view(c) for c in decision.candidates]
    return out


def _wall(now: float, at: float | None) -> str | None:
    """An engine-clock time as RFC 3339: the engine's clock is monotonic, not wall time."""
    if at is None:
        return None
    stamp = time.time() + (at - now)
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def provider_view(state: ProviderState, now: float) -> dict[str, Any]:
    spec = state.spec
    retry = state.retry_at(now)
    view = state.view
    return {
        "name": view.name,
        "namespace": view.namespace,
        "baseURL": view.base_url,
        "apiBase": view.api_base,
        "apiFormat": view.api_format.value,
        "labels": dict(state.labels),
        "capabilities": list(spec.capabilities),
        "models": list(spec.models),
        "priority": spec.priority,
        "weight": spec.weight,
        "costPer1kTokens": state.cost,
        "disabled": spec.disabled,
        "health": state.health.value,
        "healthMessage": state.health_message,
        "circuit": state.breaker.state(now).value,
        "available": state.blocks == Block.NONE,
        "reasons": reasons(state.blocks),
        "inFlight": state.in_flight,
        "maxConcurrent": spec.max_concurrent,
        "latencyMs": state.latency_ms(),
        "ttftMs": state.reported_ttft_ms,
        "rpmUsed": state.requests.total(now),
        "rpmLimit": spec.rate_limit_rpm,
        "tpmUsed": state.tokens.total(now),
        "tpmLimit": spec.rate_limit_tpm,
        "spendUSD": state.spend_usd,
        "routed": state.routed,
        "outcomes": dict(state.outcomes),
        "consecutiveFailures": max(state.probe_failures, state.breaker.failures),
        "lastError": state.last_error,
        "lastProbeAt": _wall(now, state.last_probe_at),
        "retryAt": _wall(now, retry),
        "retryInSeconds": None if retry is None else round(retry - now, 3),
        "discoveredModels": list(state.discovered_models),
        "load": load_view(state, now),
    }


def policy_view(policy: PolicyState, table: RoutingTable, now: float) -> dict[str, Any]:
    spec = policy.spec
    seen = table.availability(*policy.key)
    over, throttled = seen.over_budget, seen.throttled
    healthy, available = seen.healthy, seen.available()
    budget = spec.budget
    return {
        "name": policy.key[1],
        "namespace": policy.key[0],
        "strategy": spec.strategy.value,
        "default": spec.default,
        "providers": {"selected": len(policy.selected), "healthy": healthy,
                      "available": available},
        "spendUSD": {"window": None if policy.spend is None else policy.spend.total(now),
                     "total": policy.spend_total},
        "budget": None if budget is None else {
            "limitUSD": budget.limit_usd, "window": budget.window.value,
            "throttled": throttled, "overBudget": over},
        "routed": policy.routed,
        "unrouted": policy.unrouted,
    }
