"""Status for both kinds, computed from the routing table: pure functions, no I/O.

Conditions follow the Kubernetes API conventions: one entry per type, a CamelCase reason, a
message, the generation observed, and a ``lastTransitionTime`` that moves only when the status
flips. Figures that change on every probe (the exact latency, the probe time) are left out of
the comparison that decides whether to write, so an idle provider causes no API writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from provider_router.api import CircuitState
from provider_router.engine import (
    SATURATED_ENTER,
    SATURATED_LEAVE,
    SATURATION_SAMPLES,
    Block,
    Health,
    PolicyAvailability,
    ProviderState,
    reasons,
)

JsonDict = dict[str, Any]

# Outcome-driven reasons that flap under load: they reach status only once they have held.
TRANSIENT_REASONS = frozenset({"AtMaxConcurrent", "RateLimitRPM", "RateLimitTPM",
                               "ProviderRequestsExhausted"})


@dataclass(frozen=True)
class Verdict:
    """One condition's desired value, before its transition time is decided."""

    type: str
    status: str
    reason: str
    message: str


def merge_conditions(previous: Sequence[Mapping[str, Any]], verdicts: Sequence[Verdict],
                     generation: int | None, now: datetime) -> list[JsonDict]:
    """The condition list for ``verdicts``, keeping each ``lastTransitionTime`` unless its
    status flipped, and keeping condition types this code does not own."""
    old = {c.get("type"): c for c in previous}
    merged: list[JsonDict] = []
    for verdict in verdicts:
        before = old.pop(verdict.type, None)
        flipped = before is None or before.get("status") != verdict.status
        condition: JsonDict = {
            "type": verdict.type,
            "status": verdict.status,
            "reason": verdict.reason,
            "message": verdict.message[:32768],
            "lastTransitionTime": (_timestamp(now) if flipped or before is None
                                   else before.get("lastTransitionTime", _timestamp(now))),
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        merged.append(condition)
    merged.extend(dict(c) for c in old.values() if c.get("type"))
    return merged


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def wall_time(monotonic_at: float | None, monotonic_now: float, now: datetime) -> str | None:
    if monotonic_at is None:
        return None
    return _timestamp(now - timedelta(seconds=monotonic_now - monotonic_at))


@dataclass(frozen=True)
class Acceptance:
    """Whether the spec was valid and its references resolved; ``reason`` says what if not."""

    accepted: bool
    reason: str = "Valid"
    message: str = "spec is valid"


def provider_verdicts(state: ProviderState | None, acceptance: Acceptance, now: float,
                      hold_transient: bool = False) -> list[Verdict]:
    """Accepted, Healthy, Available and Ready for one provider.

    With ``hold_transient``, load-driven exclusions (at capacity, out of rate headroom) are not
    reported as unavailability: they are written only once they have lasted.
    """
    if not acceptance.accepted or state is None:
        accepted = Verdict("Accepted", "False", acceptance.reason, acceptance.message)
        unknown = "not routed until the spec is accepted"
        return [accepted,
                Verdict("Healthy", "Unknown", "NotAccepted", unknown),
                Verdict("Available", "False", "NotAccepted", unknown),
                Verdict("Ready", "False", acceptance.reason, acceptance.message)]
    accepted = Verdict("Accepted", "True", acceptance.reason, acceptance.message)
    healthy = _healthy(state)
    blocked = [r for r in reasons(state.blocks)
               if not (hold_transient and r in TRANSIENT_REASONS)]
    if blocked:
        available = Verdict("Available", "False", _available_reason(blocked),
                            _available_message(state, blocked, now))
    else:
        available = Verdict("Available", "True", "Eligible", "eligible for routing")
    if healthy.status != "True":
        ready = Verdict("Ready", "False", healthy.reason, healthy.message)
    elif available.status == "False":
        ready = Verdict("Ready", "False", available.reason, available.message)
    else:
        ready = Verdict("Ready", "True", "Ready", "accepted, healthy and available")
    return [accepted, healthy, available, ready]


def _healthy(state: ProviderState) -> Verdict:
    if not state.spec.health_check.enabled:
        return Verdict("Healthy", "True", "HealthCheckDisabled", "health checks are disabled")
    message = state.health_message or ""
    match state.health:
        case Health.HEALTHY:
            return Verdict("Healthy", "True", "ProbeSucceeded", message or "probe succeeded")
        case Health.UNAUTHORIZED:
            return Verdict("Healthy", "False", "Unauthorized",
                           message or "the provider refused the credential")
        case Health.UNHEALTHY:
            return Verdict("Healthy", "False", state.health_reason or "ProbeFailed",
                           message or "probes failed")
        case _:
            return Verdict("Healthy", "Unknown", "NotProbedYet", "no probe has finished yet")


def _available_reason(blocked: list[str]) -> str:
    first = blocked[0]
    return {"CoolingDown": "RateLimited", "RateLimitRPM": "RateLimited",
            "RateLimitTPM": "RateLimited",
            "ProviderRequestsExhausted": "RateLimited"}.get(first, first)


def _available_message(state: ProviderState, blocked: list[str], now: float) -> str:
    parts = [", ".join(blocked)]
    retry = state.retry_at(now)
    if retry is not None and Block.CIRCUIT_OPEN & state.blocks:
        parts.append(f"circuit open after {state.breaker.failures} consecutive failures")
    if state.last_error and ("CircuitOpen" in blocked or "CoolingDown" in blocked):
        parts.append(f"last error: {state.last_error}")
    return "; ".join(parts)


SATURATED = "Saturated"


def saturation_verdict(state: ProviderState | None, now: float) -> Verdict | None:
    """``Saturated``, for a provider whose load is scraped; None for the others.

    It follows the figures' hysteretic summary, not the figures: the message names no number,
    so that a scrape changing the KV use by a percent is not a status write.
    """
    if state is None or state.spec.load_path is None:
        return None
    live = state.live
    if live is None or not live.fresh(now):
        return Verdict(SATURATED, "Unknown", "NoLoadFigures",
                       "no fresh load figures: the scrape has not run or is failing")
    if live.saturated:
        return Verdict(SATURATED, "True", "KVCacheFull",
                       f"KV cache at {SATURATED_ENTER:.0%} or more for {SATURATION_SAMPLES} "
                       "samples in a row")
    return Verdict(SATURATED, "False", "HasRoom",
                   f"KV cache below {SATURATED_ENTER:.0%} (or back under "
                   f"{SATURATED_LEAVE:.0%} after saturation)")


def provider_models(state: ProviderState | None) -> list[str] | None:
    """``status.models``: what the provider listed when probed; None (removed) if nothing."""
    if state is None or not state.discovered_models:
        return None
    return list(state.discovered_models)


def provider_health(state: ProviderState | None, now: float,
                    wall_now: datetime) -> JsonDict | None:
    """``status.health``: figures that change only when something happens, plus the latency
    rounded so that probe-to-probe noise does not count as a change."""
    if state is None:
        return None
    circuit = state.breaker.state(now)
    health: JsonDict = {
        "consecutiveFailures": state.probe_failures if circuit is CircuitState.CLOSED
        else max(state.probe_failures, state.breaker.failures),
        "consecutiveSuccesses": 0 if state.probe_failures else min(state.probe_successes, 1),
        "circuit": circuit.value,
    }
    latency = state.probe_latency_ms if state.probe_latency_ms is not None \
        else state.reported_latency_ms
    if latency is not None:
        health["latencyMs"] = round_latency(latency)
    if state.reported_ttft_ms is not None:
        health["ttftMs"] = round_latency(state.reported_ttft_ms)
    if state.last_error and (state.blocks or state.probe_failures):
        health["lastError"] = state.last_error[:1024]
    retry = state.retry_at(now)
    if retry is not None:
        health["retryAt"] = wall_time(retry, now, wall_now)
    return health


def round_latency(latency_ms: float) -> float:
    """Two significant figures: 123.4 -> 120, 7.9 -> 7.9. Noise below that is not a change."""
    if latency_ms <= 0:
        return 0.0
    digits = len(str(int(latency_ms)))
    return float(round(latency_ms, 2 - digits)) if digits >= 2 else round(latency_ms, 1)


def policy_verdicts(seen: PolicyAvailability | None, acceptance: Acceptance,
                    namespace_has_providers: bool,
                    hold_transient: bool = False) -> tuple[list[Verdict], JsonDict]:
    """Accepted and Ready for one policy, and its provider counts, from the engine's view of
    the policy (``seen``: None when the policy is not in the table)."""
    if not acceptance.accepted or seen is None:
        verdicts = [Verdict("Accepted", "False", acceptance.reason, acceptance.message),
                    Verdict("Ready", "False", acceptance.reason, acceptance.message)]
        return verdicts, {"selected": 0, "healthy": 0, "available": 0}
    hold = (Block.AT_CAPACITY | Block.RPM_EXHAUSTED | Block.TPM_EXHAUSTED
            if hold_transient else Block.NONE)
    selected, available = seen.selected, seen.available(hold)
    counts = {"selected": selected, "healthy": seen.healthy, "available": available}
    accepted = Verdict("Accepted", "True", acceptance.reason, acceptance.message)
    if not selected:
        if namespace_has_providers:
            ready = Verdict("Ready", "False", "DanglingSelector",
                            "the provider selector matches no LLMProvider in this namespace")
        else:
            ready = Verdict("Ready", "False", "NoProvidersSelected",
                            "there are no LLMProviders in this namespace")
    elif not available:
        ready = Verdict("Ready", "False", "NoProviderAvailable",
                        f"none of the {selected} selected providers is available")
    else:
        ready = Verdict("Ready", "True", "ProvidersAvailable",
                        f"{available} of {selected} selected providers available")
    return [accepted, ready], counts
