"""One periodic task per provider of a routing table, kept in line with the table.

Probing and load scraping both poll every provider on its own interval. The bookkeeping is the
same for both and easy to get subtly wrong (a loop left running for a removed provider, a
changed spec polled at its old address until the old interval ends, a thousand polls in the
same tick on start), so it lives here once: ``sync()`` starts loops for wanted providers, stops
those no longer wanted, and restarts promptly those whose spec changed; each loop starts after
a random delay and sleeps its interval with jitter.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable

from provider_router.api import LLMProviderSpec
from provider_router.engine import ProviderKey, RoutingTable, UnknownProvider

log = logging.getLogger(__name__)

Tick = Callable[[str, str], Awaitable[object]]
Sleep = Callable[[float], Awaitable[None]]
"""How a loop waits; tests pass a virtual clock's."""
"""One poll of one provider: ``tick(namespace, name)``."""


class ProviderLoops:
    """Runs ``tick`` for every provider whose spec is ``wanted``, every ``interval(key)``."""

    def __init__(self, table: RoutingTable, *, wanted: Callable[[LLMProviderSpec], bool],
                 interval: Callable[[ProviderKey], float], tick: Tick, label: str,
                 jitter: float = 0.1, initial_delay: float = 2.0,
                 rng: random.Random | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.table = table
        self._wanted = wanted
        self._interval = interval
        self._tick = tick
        self._label = label
        self._jitter = max(0.0, min(jitter, 0.9))
        self._initial_delay = max(0.0, initial_delay)
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._tasks: dict[ProviderKey, asyncio.Task[None]] = {}
        self._specs: dict[ProviderKey, LLMProviderSpec] = {}
        self._started = False

    @property
    def keys(self) -> frozenset[ProviderKey]:
        """The providers that currently have a loop."""
        return frozenset(self._tasks)

    def start(self) -> None:
        """Start loops for the table's providers; needs a running event loop."""
        self._started = True
        self.sync()

    async def stop(self) -> None:
        """Cancel every loop and wait for them to end."""
        self._started = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._specs.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def sync(self) -> None:
        """Bring the loops in line with the table: start new ones, stop vanished or unwanted
        ones, and restart (promptly) those whose spec changed."""
        if not self._started:
            return
        wanted = {s.key: s.spec for s in self.table.providers() if self._wanted(s.spec)}
        for key in [k for k in self._tasks if k not in wanted]:
            self._cancel(key)
        for key, spec in wanted.items():
            old = self._specs.get(key)
            if old is None:
                self._launch(key, spec, self._first_delay(key))
            elif old != spec:
                self._cancel(key)
                self._launch(key, spec, 0.0)

    def refresh(self, keys: Iterable[ProviderKey]) -> None:
        """Poll these providers again soon, e.g. because their credential changed."""
        for key in keys:
            spec = self._specs.get(key)
            if spec is not None:
                self._cancel(key)
                self._launch(key, spec, 0.0)

    def _launch(self, key: ProviderKey, spec: LLMProviderSpec, delay: float) -> None:
        self._specs[key] = spec
        self._tasks[key] = asyncio.get_running_loop().create_task(
            self._loop(key, delay), name=f"{self._label} {key[0]}/{key[1]}")

    def _cancel(self, key: ProviderKey) -> None:
        task = self._tasks.pop(key, None)
        self._specs.pop(key, None)
        if task is not None:
            task.cancel()

    def _first_delay(self, key: ProviderKey) -> float:
        try:
            interval = self._interval(key)
        except UnknownProvider:
            return 0.0
        return self._rng.uniform(0.0, min(self._initial_delay, interval))

    async def _loop(self, key: ProviderKey, delay: float) -> None:
        if delay > 0:
            await self._sleep(delay)
        while True:
            await self._tick(*key)
            try:
                interval = self._interval(key)
            except UnknownProvider:
                return  # removed; sync() will forget the task
            await self._sleep(interval * self._rng.uniform(1 - self._jitter,
                                                              1 + self._jitter))


async def call_hook(hook: Callable[..., Awaitable[None] | None] | None, what: str,
                    namespace: str, name: str, *args: object) -> None:
    """Call a caller's hook (sync or async) after a probe or scrape; a failing hook is logged,
    never allowed to stop the loop."""
    if hook is None:
        return
    try:
        outcome = hook(namespace, name, *args)
        if inspect.isawaitable(outcome):
            await outcome
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s hook failed for %s/%s", what, namespace, name)
