"""What providers say about themselves: their own queue and KV cache, their rate-limit
headroom, and the models they list. Pure arithmetic over an injected ``now``.

Our leases are a poor proxy for a provider's load: workloads that never report, other routers
and other clients all load the same back-end unseen. A vLLM server knows its queue exactly, so
while its figures are fresh (at most ``STALE_AFTER_INTERVALS`` scrape intervals old) the
load-ranked strategies rank by them, adding the routes we sent since the sample (which the
sample cannot show yet). Stale figures are ignored, so a provider whose scrape broke falls
back to lease counting instead of keeping a flattering last sample forever; the table wakes
the provider up at the moment its figures go stale, so the re-ranking needs no other event.

A KV cache past the policy's threshold means the server is about to preempt or queue: such a
provider ranks after every one with room, whatever its queue. ``Saturated`` is the coarse,
hysteretic summary of the same figure, meant for status: it takes ``SATURATION_SAMPLES``
samples in a row past ``SATURATED_ENTER`` to turn on and as many below ``SATURATED_LEAVE`` to
turn off, so a server hovering at the edge does not flap its condition on every scrape.

A provider that states it has no requests left is excluded until its stated reset (capped),
before it answers 429; while such a statement is current, ``Capability`` uses it as the
request headroom instead of our own count of the sliding minute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from provider_router.engine._ratelimit import RateLimitInfo

if TYPE_CHECKING:
    from provider_router.engine._state import ProviderState

STALE_AFTER_INTERVALS: Final = 2
SATURATED_ENTER: Final = 0.95
SATURATED_LEAVE: Final = 0.85
SATURATION_SAMPLES: Final = 3
STATED_FRESH_SECONDS: Final = 60.0
"""How long a rate-limit statement without a reset time is believed (a minute's window)."""
MAX_DISCOVERED_MODELS: Final = 256
MAX_MODEL_NAME: Final = 253


@dataclass(frozen=True, slots=True)
class LoadSample:
    """One scrape of a provider's own load figures; None where the provider exports none."""

    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    """Fraction of the KV cache in use, 0 to 1."""
    loaded_models: tuple[str, ...] = ()
    """Models resident in memory (Ollama's ``/api/ps``)."""

    @property
    def queue(self) -> float | None:
        if self.running is None and self.waiting is None:
            return None
        return (self.running or 0.0) + (self.waiting or 0.0)


class LiveLoad:
    """One provider's self-reported figures and when they stop being believed."""

    __slots__ = ("_streak", "exhausted_until", "rate", "rate_until", "reported_at_sample",
                 "routed_at_rate", "routed_at_sample", "sample", "sampled_at", "saturated",
                 "stale_at")

    def __init__(self) -> None:
        self.sample: LoadSample | None = None
        self.sampled_at: float | None = None
        self.stale_at = 0.0
        self.routed_at_sample = 0
        """The provider's route count when sampled: routes since then add to its queue."""
        self.reported_at_sample = 0
        """Its count of reported outcomes when sampled: calls reported done since leave it."""
        self.saturated = False
        self._streak = 0
        self.rate: RateLimitInfo | None = None
        self.rate_until = 0.0
        self.routed_at_rate = 0
        self.exhausted_until: float | None = None

    # -- updates -----------------------------------------------------------------------------

    def record_sample(self, sample: LoadSample, now: float, interval: float,
                      routed: int, reported: int) -> bool:
        """Take a new sample; True if ``saturated`` flipped."""
        self.sample, self.sampled_at = sample, now
        self.stale_at = now + STALE_AFTER_INTERVALS * interval
        self.routed_at_sample, self.reported_at_sample = routed, reported
        kv = sample.kv_cache_usage
        if kv is None:
            self._streak = 0
            return False
        crossing = kv <= SATURATED_LEAVE if self.saturated else kv >= SATURATED_ENTER
        self._streak = self._streak + 1 if crossing else 0
        if self._streak >= SATURATION_SAMPLES:
            self.saturated, self._streak = not self.saturated, 0
            return True
        return False

    def record_rate(self, info: RateLimitInfo, now: float, routed: int) -> None:
        self.rate, self.routed_at_rate = info, routed
        reset = info.reset_requests_seconds
        self.rate_until = now + (reset if reset is not None and reset > 0
                                 else STATED_FRESH_SECONDS)
        if info.remaining_requests == 0:
            self.exhausted_until = self.rate_until
        elif info.remaining_requests is not None:
            self.exhausted_until = None

    # -- reads -------------------------------------------------------------------------------

    def fresh(self, now: float) -> bool:
        return self.sample is not None and now < self.stale_at

    def exhausted(self, now: float) -> bool:
        return self.exhausted_until is not None and now < self.exhausted_until

    def stated(self, now: float) -> RateLimitInfo | None:
        return self.rate if self.rate is not None and now < self.rate_until else None

    def next_change(self, now: float) -> float | None:
        """When these figures stop counting: a sample going stale, a statement or an
        exclusion ending."""
        times = [t for t in (self.stale_at if self.sample is not None else None,
                             self.rate_until if self.rate is not None else None,
                             self.exhausted_until) if t is not None and t > now]
        return min(times) if times else None


# -- what the strategies rank by -----------------------------------------------------------


def queue_load(state: ProviderState, now: float) -> float | None:
    """The provider's queue now, estimated, over its capacity; None without fresh figures.

    The estimate is the sampled queue (running + waiting), plus the routes we sent since,
    minus the calls reported finished since: between two scrapes it moves with every route
    and report, as a lease count would, but from the provider's own figure, which also holds
    the calls of clients that never report and of other routers."""
    live = state.live
    if live is None or not live.fresh(now):
        return None
    assert live.sample is not None
    queue = live.sample.queue
    if queue is None:
        return None
    moved = (state.routed - live.routed_at_sample) - (state.reported - live.reported_at_sample)
    return max(queue + moved, 0.0) / state.capacity


def effective_load(state: ProviderState, now: float) -> float:
    """The provider's own queue while fresh, else our leases (and any load set from outside)."""
    if state.live is not None:
        load = queue_load(state, now)
        if load is not None:
            return load
    return state.load()


def kv_full(state: ProviderState, now: float, threshold: float) -> float:
    """1.0 while fresh figures put the KV cache past ``threshold``, else 0.0: a rank key."""
    live = state.live
    if live is None or not live.fresh(now):
        return 0.0
    assert live.sample is not None
    kv = live.sample.kv_cache_usage
    return 1.0 if kv is not None and kv >= threshold else 0.0


def headroom(state: ProviderState, now: float) -> float:
    """Requests left this minute: the provider's own statement while current (less our routes
    to it since), else our count (``ProviderState.headroom``: ``rateLimitRPM`` minus the
    sliding minute's requests, no limit being unlimited)."""
    live = state.live
    stated = live.stated(now) if live is not None else None
    if stated is None or stated.remaining_requests is None:
        return state.headroom(now)
    assert live is not None
    return max(float(stated.remaining_requests - (state.routed - live.routed_at_rate)), 0.0)


# -- discovered models ---------------------------------------------------------------------


def normalise_models(names: Iterable[str]) -> tuple[str, ...]:
    """Distinct, sorted, bounded model names: what is kept and written to status."""
    kept = {n for n in names if isinstance(n, str) and 0 < len(n) <= MAX_MODEL_NAME}
    return tuple(sorted(kept)[:MAX_DISCOVERED_MODELS])


def load_view(state: ProviderState, now: float) -> dict[str, object] | None:
    """The figures the strategies use, for ``/v1/providers`` and explanations."""
    live = state.live
    if live is None:
        return None
    sample = live.sample
    stated = live.stated(now)
    return {
        "fresh": live.fresh(now),
        "ageSeconds": None if live.sampled_at is None else round(now - live.sampled_at, 3),
        "running": None if sample is None else sample.running,
        "waiting": None if sample is None else sample.waiting,
        "kvCacheUsage": None if sample is None else sample.kv_cache_usage,
        "loadedModels": [] if sample is None else list(sample.loaded_models),
        "queueLoad": queue_load(state, now),
        "saturated": live.saturated,
        "remainingRequests": None if stated is None else stated.remaining_requests,
        "remainingTokens": None if stated is None else stated.remaining_tokens,
        "requestsExhausted": live.exhausted(now),
    }


def load_detail(state: ProviderState, now: float) -> str:
    """One line of the figures for an explanation: empty when there are none."""
    live = state.live
    if live is None:
        return ""
    parts: list[str] = []
    if live.fresh(now):
        assert live.sample is not None
        assert live.sampled_at is not None
        sample = live.sample
        if sample.queue is not None:
            parts.append(f"queue {sample.running or 0:g} running + {sample.waiting or 0:g} "
                         f"waiting + {state.routed - live.routed_at_sample} routed - "
                         f"{state.reported - live.reported_at_sample} reported since")
        if sample.kv_cache_usage is not None:
            parts.append(f"kv cache {sample.kv_cache_usage:.0%}")
        parts.append(f"sampled {now - live.sampled_at:.1f}s ago")
    elif live.sample is not None:
        parts.append("load figures stale: ranked by leases")
    stated = live.stated(now)
    if stated is not None and stated.remaining_requests is not None:
        parts.append(f"{stated.remaining_requests} requests left (stated)")
    return "; ".join(parts)


def live_load(state: ProviderState) -> LiveLoad:
    """The provider's live figures, made on first use (most providers never report any)."""
    if state.live is None:
        state.live = LiveLoad()
    return state.live
