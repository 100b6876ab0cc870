"""Why each selected provider was, or was not, chosen: the answers of ``explain=true`` and of
an unavailable route.

An unavailable answer is what a router sends most exactly when it is overloaded, so its cost
is bounded: providers are explained one by one up to a limit, and the exclusion counts by
reason are remembered per pool until one of its members changes.
"""

from __future__ import annotations

from collections.abc import Mapping

from provider_router.engine._decision import Candidate, Role
from provider_router.engine._load import load_detail
from provider_router.engine._policy import PoolEntry
from provider_router.engine._reasons import MISSING_CAPABILITY, MODEL_NOT_SERVED, Block, reasons
from provider_router.engine._state import ProviderKey, ProviderState


def explain(providers: Mapping[ProviderKey, ProviderState], entry: PoolEntry,
            capabilities: frozenset[str], model: str | None, chosen: list[int], now: float,
            limit: int | None = None) -> tuple[Candidate, ...]:
    """Each selected provider's role and reasons, by name; the first ``limit`` only."""
    roles = {s: (Role.PRIMARY if i == 0 else Role.FALLBACK) for i, s in enumerate(chosen)}
    out: list[Candidate] = []
    for key in entry.selected[:limit]:
        state = providers[key]
        slot = entry.slot_of.get(key)
        if slot is None:
            reason, detail = unmet(state, capabilities, model)
            out.append(Candidate(key[1], key[0], Role.EXCLUDED, (reason,), detail))
            continue
        blocks = entry.blocks_of(state)
        if blocks:
            out.append(Candidate(key[1], key[0], Role.EXCLUDED, tuple(reasons(blocks)),
                                 describe_blocks(state, blocks, now)))
        else:
            figures = load_detail(state, now) if entry.load_ranked else ""
            out.append(Candidate(key[1], key[0], roles.get(slot, Role.STANDBY), (),
                                 f"ranked by {entry.strategy.value}"
                                 + (f": {figures}" if figures else "")))
    return tuple(out)

def exclusion_counts(providers: Mapping[ProviderKey, ProviderState], entry: PoolEntry,
                     capabilities: frozenset[str]) -> dict[str, int]:
    """How many selected providers each reason excludes, remembered until a member
    changes: a burst of unavailable answers then costs one pass, not one each."""
    cached = entry.exclusion_counts
    if cached is not None and cached[0] == entry.touches:
        return cached[1]
    by_blocks: dict[int, int] = {}
    counts: dict[str, int] = {}
    slot_of = entry.slot_of
    for key in entry.selected:
        state = providers[key]
        if key in slot_of:
            blocks = entry.blocks_of(state)
            by_blocks[blocks] = by_blocks.get(blocks, 0) + 1
        else:
            reason = unmet(state, capabilities, None)[0]
            counts[reason] = counts.get(reason, 0) + 1
    for blocks, count in by_blocks.items():
        for reason in reasons(blocks):
            counts[reason] = counts.get(reason, 0) + count
    entry.exclusion_counts = (entry.touches, counts)
    return counts

def unmet(state: ProviderState, capabilities: frozenset[str],
          model: str | None) -> tuple[str, str]:
    """Why a selected provider is not in a pool at all: the reason and its detail."""
    missing = sorted(capabilities - state.capabilities)
    if missing:
        return MISSING_CAPABILITY, f"lacks {', '.join(missing)}"
    return MODEL_NOT_SERVED, f"does not serve model {model}"

def describe_blocks(state: ProviderState, blocks: int, now: float) -> str:
    parts: list[str] = []
    if blocks & (Block.UNHEALTHY | Block.UNAUTHORIZED) and state.health_message:
        parts.append(state.health_message)
    retry = state.retry_at(now)
    if retry is not None:
        parts.append(f"retry in {retry - now:.1f}s")
    # Counts and limits as compared: with the other replicas' totals, at this one's share.
    share = state.share
    if blocks & Block.AT_CAPACITY:
        parts.append(f"{state.in_flight + state.others_in_flight}/"
                     f"{(state.spec.max_concurrent or 0) * share:g} in flight")
    if blocks & Block.RPM_EXHAUSTED:
        parts.append(f"{state.requests.total(now) + state.others_requests:.0f}/"
                     f"{(state.spec.rate_limit_rpm or 0) * share:g} rpm")
    if blocks & Block.TPM_EXHAUSTED:
        parts.append(f"{state.tokens.total(now) + state.others_tokens:.0f}/"
                     f"{(state.spec.rate_limit_tpm or 0) * share:g} tpm")
    if blocks & Block.OVER_BUDGET:
        parts.append("policy budget spent")
    return "; ".join(parts)


__all__ = ["describe_blocks", "exclusion_counts", "explain", "unmet"]
