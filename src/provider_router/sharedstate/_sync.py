"""The loop that shares one replica's totals through Valkey or Redis and takes in the others'.

Every interval a replica writes its OWN totals (not increments) under its own keys, in one
transaction that also stamps it in a member set and reads that set back; one ``MGET`` then
fetches every other replica's entries. That is two round trips per interval, whatever the
request rate. Entries expire (rates after a minute, spend after the longest budget window),
so a replica that dies stops being counted once its entries age out, and one that comes back
after an outage overwrites its entries with totals that already include what it did while cut
off: nothing is counted twice.

No route waits for this loop. When the store does not answer (refused, or silent past the
timeout: every call is bounded), routing goes on and the table enforces its share of every
limit, the limit divided by the replicas this loop last saw.

The fleet's one half-open trial per circuit flip is claimed with ``SET NX PX``: whoever sets
the key first is granted the trial; the key lives until a trial begun as the circuit
half-opens would have timed out (the rest of the cooldown, plus the trial's timeout), so a
winner that dies mid-trial, or routes nothing, frees it then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Gauge
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from provider_router._defaults import DEFAULT_STATE_PREFIX, DEFAULT_STATE_SYNC_MS
from provider_router.engine import FleetSnapshot, RoutingTable, UnknownProvider
from provider_router.sharedstate._wire import decode, encode_rates, encode_spend

log = logging.getLogger("provider_router.sharedstate")

STATE_URL_ENV = "PROVIDER_ROUTER_STATE_URL"
RATES_TTL = 60.0
"""Seconds a replica's provider totals outlive its last write: the sliding minute they cover."""

CONNECTED = "connected"
DEGRADED = "degraded"
CONNECTING = "connecting"


def describe(url: str) -> str:
    """The store's address for logs and errors: never its password or user."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or ''}"


class SharedState:
    """Shares ``table``'s totals through the store at ``url`` every ``sync_ms``.

    ``await start()`` returns at once (the first sync happens in the background: a store that
    is down at start-up must not stop the router); ``await stop()`` ends the loop and closes
    the client, within a bounded time.
    """

    def __init__(self, table: RoutingTable, url: str, *, sync_ms: int = DEFAULT_STATE_SYNC_MS,
                 registry: CollectorRegistry | None = None, prefix: str = DEFAULT_STATE_PREFIX,
                 replica_id: str | None = None, rates_ttl: float = RATES_TTL,
                 timeout: float | None = None) -> None:
        if sync_ms <= 0:
            raise ValueError(f"the sync interval must be positive, not {sync_ms} ms")
        self.table = table
        self.address = describe(url)
        self.interval = sync_ms / 1000.0
        self.prefix = prefix
        self.replica_id = replica_id or (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        self.rates_ttl = rates_ttl
        self.timeout = timeout if timeout is not None else max(1.0, 5 * self.interval)
        """Seconds any one exchange with the store may take before the store counts as down."""
        self.state = CONNECTING
        self.replicas = 1
        """Replicas with live entries at the last successful sync, this one included."""
        self.fallback_replicas = 1
        """Replicas known some other way (the operator counts its Service's endpoints): the
        share falls back to the larger of this and ``replicas`` when the store is down."""
        self.syncs = 0
        self.failures = 0
        self.commands = 0
        """Store commands sent so far (a transaction's commands count one by one)."""
        self.trials_won = 0
        self._client: Redis = Redis.from_url(
            url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False, health_check_interval=0)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._degraded_gauge: Gauge | None = None
        self._replicas_gauge: Gauge | None = None
        if registry is not None:
            self._degraded_gauge = Gauge(
                "provider_router_shared_state_degraded", "1 while the shared state store "
                "does not answer and each replica enforces its share of every limit, else 0.",
                registry=registry)
            self._replicas_gauge = Gauge(
                "provider_router_shared_state_replicas", "Replicas seen through the shared "
                "state store at the last sync (this one included).", registry=registry)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="shared-state")

    async def stop(self) -> None:
        """End the loop, then close the client; bounded even if the store hangs."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            try:
                await asyncio.wait_for(task, timeout=self.timeout + 1.0)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.aclose(), timeout=self.timeout)

    def status(self) -> dict[str, Any]:
        """What ``/readyz`` details show: the state and the replica count, never the URL."""
        return {"sharedState": self.state, "replicas": self.replicas,
                "limitShare": round(self.table.fleet.share, 4)}

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            await self.sync_once()
            pause = max(0.0, self.interval - (loop.time() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=pause)

    async def sync_once(self) -> bool:
        """One exchange with the store; False (and the table on its share) if it failed."""
        try:
            await asyncio.wait_for(self._exchange(), timeout=self.timeout)
        except (RedisError, OSError, TimeoutError) as error:
            self.failures += 1
            self._degrade(error)
            return False
        self.syncs += 1
        if self.state != CONNECTED:
            log.info("shared state at %s answers: replicas sharing every limit: %d",
                     self.address, self.replicas)
        self.state = CONNECTED
        self._publish()
        return True

    async def _exchange(self) -> None:
        table = self.table
        now = table.clock()
        offset = time.time() - now  # engine clock -> wall clock
        mine = table.fleet.snapshot(now).shifted(offset)
        wall_ms = int((now + offset) * 1000)
        p, me = self.prefix, self.replica_id
        spend_ttl = max(self.rates_ttl, self._longest_budget_window())
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(f"{p}:rates:{me}", encode_rates(mine), px=int(self.rates_ttl * 1000))
            pipe.set(f"{p}:spend:{me}", encode_spend(mine), px=int(spend_ttl * 1000))
            pipe.zadd(f"{p}:members", {me: wall_ms})
            pipe.zremrangebyscore(f"{p}:members", "-inf", wall_ms - int(spend_ttl * 1000))
            pipe.zrange(f"{p}:members", 0, -1)
            self.commands += 7  # MULTI, five commands, EXEC
            replies = await pipe.execute()
        members = [m.decode() if isinstance(m, bytes) else str(m) for m in replies[-1]]
        others = [m for m in members if m != me]
        snapshots: list[FleetSnapshot] = []
        live = 1
        if others:
            keys = [f"{p}:rates:{m}" for m in others] + [f"{p}:spend:{m}" for m in others]
            self.commands += 1
            values = await self._client.mget(keys)
            count = len(others)
            for rates, spend in zip(values[:count], values[count:], strict=True):
                if rates is None and spend is None:
                    continue
                live += rates is not None
                snapshots.append(decode(rates, spend).shifted(-offset))
        self.replicas = live
        claims = table.fleet.apply(snapshots, table.clock(), replicas=live)
        if claims:
            await self._claim(claims, offset)

    async def _claim(self, claims: list[tuple[tuple[str, str], str]], offset: float) -> None:
        """Try for the fleet's one half-open trial of each flip; grant those won."""
        async with self._client.pipeline(transaction=False) as pipe:
            for (namespace, name), flip_id in claims:
                try:
                    px = int(self.table.trial_claim_seconds(namespace, name) * 1000)
                except UnknownProvider:  # removed since: any claim will do, none is granted
                    px = int(self.table.lease_ttl * 1000)
                pipe.set(f"{self.prefix}:trial:{namespace}/{name}:{flip_id}", self.replica_id,
                         nx=True, px=px)
            self.commands += len(claims)
            won = await pipe.execute()
        now = self.table.clock()
        for (key, flip_id), reply in zip(claims, won, strict=True):
            if reply and self.table.fleet.grant_trial(key, flip_id, now):
                self.trials_won += 1
                log.info("this replica takes the fleet's half-open trial of %s/%s", *key)

    def _degrade(self, error: BaseException) -> None:
        replicas = max(self.replicas, self.fallback_replicas)
        if self.state != DEGRADED:
            log.warning("shared state at %s does not answer (%s); each replica now enforces "
                        "1/%d of every limit", self.address,
                        type(error).__name__ if not str(error) else error, replicas)
        self.state = DEGRADED
        self.table.fleet.divide(replicas, self.table.clock())
        self._publish()

    def _publish(self) -> None:
        if self._degraded_gauge is not None:
            self._degraded_gauge.set(1 if self.state == DEGRADED else 0)
        if self._replicas_gauge is not None:
            self._replicas_gauge.set(self.replicas)

    def _longest_budget_window(self) -> float:
        windows = [p.spend.span for p in self.table.policies() if p.spend is not None]
        return max(windows, default=0.0)
