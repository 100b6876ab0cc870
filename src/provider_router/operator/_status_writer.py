"""Writes status for every tracked resource, only when it changed, and posts Events on flips.

One loop on the leading replica compares the status each object should have with the status the
API server last showed, and patches the difference. Load-driven exclusions must hold for a few
seconds before they are written (hysteresis), and the exact probe latency and time never cause a
write on their own, so idle providers cause no API traffic at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from provider_router.engine import ProviderState, RoutingTable, UnknownPolicy, UnknownProvider
from provider_router.operator._conditions import (
    SATURATED,
    JsonDict,
    merge_conditions,
    policy_verdicts,
    provider_health,
    provider_models,
    provider_verdicts,
    saturation_verdict,
    wall_time,
)
from provider_router.operator._kube import KubeClient
from provider_router.operator._reconciler import Key, Reconciler, Tracked

log = logging.getLogger(__name__)

# Status keys that change with every probe: written along with a real change, never alone, so
# a provider that stays up (or stays down) costs no writes.
_VOLATILE = ("lastProbeTime", "consecutiveFailures", "consecutiveSuccesses", "retryAt")


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in status.get("conditions") or ():
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def _comparable(status: dict[str, Any]) -> dict[str, Any]:
    health = {k: v for k, v in (status.get("health") or {}).items() if k not in _VOLATILE}
    return {"observedGeneration": status.get("observedGeneration"),
            "conditions": status.get("conditions") or [],
            "health": health or None, "providers": status.get("providers"),
            "models": status.get("models") or None}


LATENCY_NOISE_MS = 50.0
"""Latency moves smaller than this are never written: on a busy node one probe of a
loopback or in-cluster provider takes 5 ms and the next 30 ms."""


def _latency_is_close(old: Any, new: Any) -> bool:
    """A latency within a factor of two (or ``LATENCY_NOISE_MS``) of the written one is not
    worth a write: the column is for telling 5 ms from 500 ms, and probe-to-probe noise is
    larger than 50%."""
    if not isinstance(old, int | float) or not isinstance(new, int | float):
        return False
    return abs(new - old) <= LATENCY_NOISE_MS or max(new, old) <= 2 * min(new, old)


class StatusWriter:
    def __init__(self, reconciler: Reconciler, kube: KubeClient, *, hold: float = 5.0,
                 is_leader: Callable[[], bool] = lambda: True,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 concurrency: int = 8) -> None:
        self.reconciler = reconciler
        self.table: RoutingTable = reconciler.table
        self.kube = kube
        self.hold = hold
        self.is_leader = is_leader
        self.wall_clock = wall_clock
        self.concurrency = concurrency
        self.writes = 0
        self.events = 0
        self._transient_since: dict[Key, float] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, interval: float = 1.0) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            self._wake.clear()
            # Before the first full listing, a policy may be seen before its providers: its
            # status would be computed from half a table and written twice. Wait for all.
            if not self.is_leader() or not self.reconciler.synced():
                continue
            try:
                await self.flush()
            except Exception:  # the loop must outlive one bad write; the next tick retries
                log.exception("status flush failed")

    async def flush(self) -> int:
        """Write every status that differs from the server's; returns how many were written.

        Statuses are computed in one pass (no I/O), then the patches go out a few at a time:
        at start-up hundreds may differ, and one round trip each, in turn, would take seconds.
        """
        pending = [(t, self._provider_status(k, t))
                   for k, t in list(self.reconciler.providers.items())]
        # Read the table once per flush, not once per policy: every tick visits every policy.
        namespaces = {k[0] for k in self.reconciler.providers}
        pending += [(t, self._policy_status(k, t, namespaces))
                    for k, t in list(self.reconciler.policies.items())]
        changed = [(t, d) for t, d in pending if _comparable(d) != _comparable(t.status)]
        if not changed:
            return 0
        limit = asyncio.Semaphore(self.concurrency)

        async def write(tracked: Tracked, desired: JsonDict) -> bool:
            async with limit:
                return await self._write(tracked, desired)

        results = await asyncio.gather(*(write(t, d) for t, d in changed))
        return sum(results)

    def _state(self, key: Key) -> ProviderState | None:
        try:
            return self.table.provider(*key)
        except UnknownProvider:
            return None

    def _provider_status(self, key: Key, tracked: Tracked) -> JsonDict:
        now, wall = self.table.clock(), self.wall_clock()
        state = self._state(key)
        verdicts = provider_verdicts(state, tracked.acceptance, now)
        held = provider_verdicts(state, tracked.acceptance, now, hold_transient=True)
        if verdicts != held:
            since = self._transient_since.setdefault(key, now)
            if now - since < self.hold:
                verdicts = held
        else:
            self._transient_since.pop(key, None)
        previous = tracked.status.get("conditions") or []
        saturated = saturation_verdict(state, now)
        if saturated is not None:
            verdicts = [*verdicts, saturated]
        else:  # scraping turned off: its condition goes with it
            previous = [c for c in previous if c.get("type") != SATURATED]
        status: JsonDict = {
            "observedGeneration": tracked.generation,
            "conditions": merge_conditions(previous, verdicts, tracked.generation, wall),
            # None removes the key (a merge patch): a provider that stopped listing models.
            "models": provider_models(state)}
        health = provider_health(state, now, wall)
        if health is not None and state is not None:
            old = tracked.status.get("health") or {}
            for figure in ("latencyMs", "ttftMs"):
                if figure not in health and figure in old:
                    health[figure] = old[figure]  # not measured yet since a restart
                elif _latency_is_close(old.get(figure), health.get(figure)):
                    health[figure] = old[figure]
            probed = wall_time(state.last_probe_at, now, wall) or old.get("lastProbeTime")
            if probed is not None:
                health["lastProbeTime"] = probed
            status["health"] = health
        return status

    def _policy_status(self, key: Key, tracked: Tracked, namespaces: set[str]) -> JsonDict:
        try:
            seen = self.table.availability(*key)
        except UnknownPolicy:  # an unaccepted policy is not in the table
            seen = None
        verdicts, counts = policy_verdicts(seen, tracked.acceptance, key[0] in namespaces,
                                           hold_transient=True)
        return {"observedGeneration": tracked.generation,
                "conditions": merge_conditions(tracked.status.get("conditions") or [],
                                               verdicts, tracked.generation,
                                               self.wall_clock()),
                "providers": counts}

    async def _write(self, tracked: Tracked, desired: JsonDict) -> bool:
        if _comparable(desired) == _comparable(tracked.status):
            return False
        before = tracked.status
        result = await self.kube.patch_status(tracked.ref, desired)
        if result is None:
            return False  # deleted meanwhile
        self.writes += 1
        tracked.status = dict(result.get("status") or desired)
        await self._post_flips(tracked, before, tracked.status)
        return True

    async def _post_flips(self, tracked: Tracked, before: dict[str, Any],
                          after: dict[str, Any]) -> None:
        if tracked.ref.kind != "LLMProvider":
            return
        old, new = _condition(before, "Healthy"), _condition(after, "Healthy")
        if new.get("status") == "False" and old.get("status") != "False":
            await self._event(tracked, "Warning", "BecameUnhealthy",
                              f"{new.get('reason')}: {new.get('message')}")
        elif new.get("status") == "True" and old.get("status") == "False":
            await self._event(tracked, "Normal", "Recovered", "probes succeed again")
        old_circuit = (before.get("health") or {}).get("circuit", "Closed")
        new_circuit = (after.get("health") or {}).get("circuit", "Closed")
        # A dead provider cycles Open -> HalfOpen -> Open; only leaving Closed is news.
        if new_circuit == "Open" and old_circuit == "Closed":
            await self._event(tracked, "Warning", "CircuitOpened",
                              f"circuit opened: {(after.get('health') or {}).get('lastError')}")
        elif new_circuit == "Closed" and old_circuit != "Closed":
            await self._event(tracked, "Normal", "CircuitClosed", "circuit closed again")

    async def _event(self, tracked: Tracked, event_type: str, reason: str,
                     message: str) -> None:
        self.events += 1
        await self.kube.post_event(tracked.ref, event_type, reason, message)
