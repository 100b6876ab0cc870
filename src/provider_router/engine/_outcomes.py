"""What a reported outcome changes: the provider's counts, circuit, latency (and time to first
token) and cooldown, and
the spend charged to the provider and its policy.

Kept apart from the table because both reports of leases and reports naming a provider end
here, and because spend is also charged for a lease whose provider has left since (its prices
travel with the lease).
"""

from __future__ import annotations

from provider_router.engine._decision import Outcome, OutcomeKind
from provider_router.engine._load import live_load
from provider_router.engine._policy import PolicyState
from provider_router.engine._state import ProviderState


def apply_outcome(state: ProviderState, policy: PolicyState | None, outcome: Outcome,
                  now: float) -> float:
    """Learn from one reported call: outcome counts, circuit, latency, cooldown and spend.
    Returns the call's cost."""
    kind = outcome.outcome
    state.outcomes[kind.value] = state.outcomes.get(kind.value, 0) + 1
    state.reported += 1
    if kind is OutcomeKind.SUCCESS:
        state.breaker.record_success()
        if outcome.latency_ms is not None:
            state.update_latency(outcome.latency_ms)
        if outcome.ttft_ms is not None:
            state.update_ttft(outcome.ttft_ms)
    elif kind is OutcomeKind.RATE_LIMITED:
        cooldown = (outcome.retry_after_seconds if outcome.retry_after_seconds is not None
                    else float(policy.spec.failover.cooldown_seconds) if policy is not None
                    else state.breaker.cooldown)
        until = now + cooldown
        state.cooling_until = max(state.cooling_until or until, until)
        state.last_error = "rate limited" + (f" (HTTP {outcome.status_code})"
                                             if outcome.status_code else "")
    else:
        state.breaker.record_failure(now)
        code = f" (HTTP {outcome.status_code})" if outcome.status_code else ""
        state.last_error = f"{kind.value}{code} reported by a workload"
    if outcome.rate_limit is not None:
        live_load(state).record_rate(outcome.rate_limit, now, state.routed)
    return record_spend(state, state.prices, policy, outcome, now)

def record_spend(state: ProviderState | None, prices: tuple[float, float],
                 policy: PolicyState | None, outcome: Outcome, now: float) -> float:
    """Charge an outcome's tokens to the provider (None: it has left) and the policy."""
    tokens = outcome.input_tokens + outcome.output_tokens
    if tokens <= 0:
        return 0.0
    cost = (outcome.input_tokens * prices[0] + outcome.output_tokens * prices[1]) / 1000.0
    if state is not None:
        state.tokens.add(now, tokens)
        state.spend_usd += cost
    if policy is not None:
        policy.spend_total += cost
        if policy.spend is not None:
            policy.spend.add(now, cost)
    return cost


__all__ = ["apply_outcome", "record_spend"]
