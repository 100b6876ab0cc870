"""``provider-router operator``: Kopf, the route API, the prober and the status writer in one
event loop.

The route API starts first and answers from the start; ``/readyz`` turns true only once the
table holds every LLMProvider and RoutingPolicy that existed when the operator started. When
the API server becomes unreachable, routing goes on from the last known table, and ``/readyz``
details and a metric say since when it is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import kopf
from prometheus_client import CollectorRegistry

from provider_router._defaults import DEFAULT_LIVENESS_PORT, DEFAULT_OPERATOR_HOST
from provider_router.access import (
    ALLOW_TTL,
    REFUSE_TTL,
    AuthMode,
    ReviewClient,
    access_for,
    operator_auth_mode,
    warn_if_open,
)
from provider_router.api import SecretKeyRef
from provider_router.engine import LoadSample, ProbeResult
from provider_router.operator._handlers import build_registry, operator_settings
from provider_router.operator._kube import KubeClient, load_api_client
from provider_router.operator._leader import Leadership, LeaseElection
from provider_router.operator._peers import ReplicaCount
from provider_router.operator._reconciler import Reconciler
from provider_router.operator._status_writer import StatusWriter
from provider_router.runtime import Runtime, RuntimeSettings
from provider_router.service import Access, tune_gc

log = logging.getLogger(__name__)


@dataclass
class OperatorOptions:
    namespaces: list[str] = field(default_factory=list)
    all_namespaces: bool = False
    runtime: RuntimeSettings = field(
        default_factory=lambda: RuntimeSettings(host=DEFAULT_OPERATOR_HOST))
    """The route API, probes and leases: what the operator shares with standalone mode."""
    liveness_port: int | None = DEFAULT_LIVENESS_PORT
    kubeconfig: str | None = None
    leader_elect: bool = False
    leader_namespace: str = "default"
    leader_lease: str = "provider-router-leader"
    status_hold_seconds: float = 5.0
    status_interval_seconds: float = 1.0
    staleness_check_seconds: float = 10.0
    replicas_service: str | None = None
    """The route Service in ``leader_namespace`` whose ready EndpointSlice endpoints count the
    replicas: without a state store each enforces its share of every limit."""
    replicas_check_seconds: float = 10.0
    tune_gc: bool = False
    """Freeze the start-up heap out of GC (see ``tune_gc``): for the process entry point."""
    auth_allow_ttl: float = ALLOW_TTL
    """Seconds a review's allow is cached; refusals for ``auth_refuse_ttl``."""
    auth_refuse_ttl: float = REFUSE_TTL


class Operator:
    """All the parts, wired; ``run()`` until ``stop()``."""

    def __init__(self, options: OperatorOptions) -> None:
        self.options = options
        self.api_client = load_api_client(options.kubeconfig)
        self.kube = KubeClient(self.api_client)
        # The shared store's keys are per release: the election Lease's name tells releases
        # apart in one namespace.
        runtime = options.runtime.with_changes(
            state_prefix=f"{options.runtime.state_prefix}:{options.leader_lease}")
        # ``--auth`` is read from the runtime settings both modes share; None: this mode's
        # default (``operator_auth_mode``).
        proxied = runtime.proxy is not None
        self.auth = operator_auth_mode(runtime.auth, proxy=proxied)
        warn_if_open(self.auth, proxy=proxied)
        self.runtime = Runtime(runtime, credential_for=self._credential_for,
                               readiness=self.readiness, on_probe=self._probed,
                               on_sample=self._sampled, access=self._access)
        self.access = self.runtime.service.access
        self.table = self.runtime.table
        self.metrics = self.runtime.metrics
        self.reconciler = Reconciler(self.table, self.kube)
        self.leadership: Leadership = (
            LeaseElection(self.api_client, options.leader_namespace, options.leader_lease)
            if options.leader_elect else Leadership(True))
        self.writer = StatusWriter(self.reconciler, self.kube,
                                   hold=options.status_hold_seconds,
                                   is_leader=self.leadership.is_leader)
        self.prober = self.runtime.prober
        self.service = self.runtime.service
        self.server = self.runtime.server
        self.shared = self.runtime.shared
        self.proxy = self.runtime.proxy
        self.peers = (ReplicaCount(self.api_client, options.leader_namespace,
                                   options.replicas_service)
                      if options.replicas_service else None)
        self.stale_since: float | None = None
        self._stop = asyncio.Event()
        self._probing = False

    # -- wiring ------------------------------------------------------------------------------

    def _access(self, registry: CollectorRegistry) -> Access:
        if self.auth is AuthMode.KEYS:
            raise ValueError("--auth keys is for `provider-router serve`; the operator "
                             "supports none and kubernetes")
        # Reviews go through the operator's own connection: the same server, CA, credentials.
        return access_for(
            self.auth, registry, audience=self.options.runtime.auth_audience,
            reviews=lambda: ReviewClient.from_configuration(self.api_client.configuration),
            allow_ttl=self.options.auth_allow_ttl, refuse_ttl=self.options.auth_refuse_ttl)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        details: dict[str, Any] = {"synced": self.reconciler.synced(),
                                   "leader": self.leadership.is_leader(),
                                   "stale": self.stale_since is not None}
        if self.stale_since is not None:
            details["staleSeconds"] = round(time.monotonic() - self.stale_since, 1)
        # With a store the runtime adds its status; without one, the replicas seen say which
        # share of each limit this one enforces.
        if self.shared is None and self.peers is not None and self.peers.count is not None:
            details.update({"sharedState": "perReplica", "replicas": self.table.fleet.replicas,
                            "limitShare": round(self.table.fleet.share, 4)})
        # A stale table still routes: only the initial sync gates readiness.
        return self.reconciler.synced(), details

    def _credential_for(self, namespace: str, ref: SecretKeyRef) -> str | None:
        return self.reconciler.credential_for(namespace, ref)

    def _changed(self) -> None:
        if self._probing:
            self.prober.sync()
        self.writer.wake()

    def _probed(self, namespace: str, name: str, result: ProbeResult) -> None:
        self.writer.wake()

    def _sampled(self, namespace: str, name: str, sample: LoadSample, flipped: bool) -> None:
        if flipped:  # only a flip can change status; figures themselves are never written
            self.writer.wake()

    def _namespaces(self) -> list[str] | None:
        return None if self.options.all_namespaces or not self.options.namespaces \
            else list(self.options.namespaces)

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        await self.runtime.start()
        registry = build_registry(self.reconciler, self.api_client, self._changed)
        kopf_stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        namespaces = self._namespaces()
        liveness = (f"http://0.0.0.0:{self.options.liveness_port}/healthz"
                    if self.options.liveness_port else None)
        kopf_task = asyncio.create_task(kopf.operator(
            registry=registry, settings=operator_settings(), standalone=True,
            clusterwide=namespaces is None, namespaces=namespaces or (),
            liveness_endpoint=liveness, stop_flag=kopf_stop), name="kopf")
        if isinstance(self.leadership, LeaseElection):
            self.leadership.start()
        sync = asyncio.create_task(self._initial_sync(), name="initial-sync")
        tasks = [kopf_task,
                 asyncio.create_task(self.writer.run(self.options.status_interval_seconds),
                                     name="status-writer"),
                 asyncio.create_task(self._follow_leadership(), name="leadership"),
                 asyncio.create_task(self._watch_staleness(), name="staleness")]
        if self.peers is not None:
            tasks.append(asyncio.create_task(self._count_replicas(), name="replica-count"))
        stopper = asyncio.create_task(self._stop.wait(), name="stop")
        try:
            # Runs until stopped, or until a part that should run forever ends (a failure).
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and not task.cancelled() and task.exception():
                    raise RuntimeError(f"{task.get_name()} failed") from task.exception()
        finally:
            if not kopf_stop.done():
                kopf_stop.set_result(None)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(kopf_task), timeout=10)
            for task in [*tasks, stopper, sync]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, sync, return_exceptions=True)
            if isinstance(self.leadership, LeaseElection):
                self.leadership.stop()
            await self.runtime.stop()
            await asyncio.to_thread(self.api_client.close)

    async def _initial_sync(self) -> None:
        """Readiness waits for every object that exists now to reach the table."""
        namespaces = self._namespaces()
        while True:
            try:
                providers = await self.kube.list_objects("llmproviders", namespaces)
                policies = await self.kube.list_objects("routingpolicies", namespaces)
                break
            except Exception as error:
                log.warning("cannot list resources yet (%s); retrying", error)
                await asyncio.sleep(2)
        self.reconciler.expect({o["metadata"]["uid"] for o in (*providers, *policies)})
        while not self.reconciler.synced():
            await asyncio.sleep(0.05)
        log.info("routing table synced: %d providers, %d policies", len(providers),
                 len(policies))
        if self.options.tune_gc:
            tune_gc()

    async def _follow_leadership(self) -> None:
        """Probe (and write status) only while leading; followers adopt the leader's health."""
        while True:
            leading = self.leadership.is_leader()
            if leading and not self._probing:
                self.reconciler.adopt_health = False
                self.prober.start()
                self._probing = True
                self.prober.sync()
            elif not leading and self._probing:
                await self.prober.stop()
                self.reconciler.adopt_health = True
                self._probing = False
            self.leadership.changed.clear()
            await self.leadership.changed.wait()

    async def _watch_staleness(self) -> None:
        while True:
            reachable = await self.kube.ping()
            if reachable and self.stale_since is not None:
                log.info("the API server answers again")
                self.stale_since = None
            elif not reachable and self.stale_since is None:
                log.warning("the API server does not answer; routing from the last known table")
                self.stale_since = time.monotonic()
            self.metrics.set_table_stale(self.stale_since is not None)
            await asyncio.sleep(self.options.staleness_check_seconds)

    async def _count_replicas(self) -> None:
        """Keep the replica count current: without a store it divides every limit; with one
        it is the share to fall back on if the store is down before it ever answered."""
        assert self.peers is not None
        while True:
            count = await self.peers.read()
            if count is not None:
                count = max(1, count)
                if self.shared is not None:
                    self.shared.fallback_replicas = count
                elif count != self.table.fleet.replicas:
                    log.info("%d replicas serve routes without shared state: each enforces "
                             "1/%d of every limit (set --state-url to share them)", count,
                             count)
                    self.table.fleet.divide(count, self.table.clock())
            await asyncio.sleep(self.options.replicas_check_seconds)


async def run_operator(options: OperatorOptions) -> None:
    operator = Operator(options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, operator.stop)
    await operator.run()


def run(*, namespaces: list[str] | None = None, all_namespaces: bool = False,
        runtime: RuntimeSettings | None = None, kubeconfig: str | None = None,
        **extra: Any) -> None:
    """Entry point of ``provider-router operator``."""
    options = OperatorOptions(namespaces=list(namespaces or []), all_namespaces=all_namespaces,
                              runtime=runtime or RuntimeSettings(host=DEFAULT_OPERATOR_HOST),
                              kubeconfig=kubeconfig, tune_gc=True, **extra)
    try:
        import uvloop

        uvloop.run(run_operator(options))
    except ImportError:
        asyncio.run(run_operator(options))
