"""Which replica probes providers and writes status.

Every replica watches the resources and serves routes from its own table; only one must probe
and write, or probes multiply and status writes race. Kopf's peering would freeze the other
replicas' watches as well, leaving their tables stale, so a coordination.k8s.io Lease (the
client library's leader election, run in a thread) decides instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid

from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

log = logging.getLogger(__name__)


class Leadership:
    """``is_leader()`` for the loop; ``changed`` is set whenever it flips."""

    def __init__(self, leading: bool = True) -> None:
        self._leading = leading
        self.changed = asyncio.Event()

    def is_leader(self) -> bool:
        return self._leading

    def _set(self, leading: bool) -> None:
        if leading != self._leading:
            log.info("this replica %s leading", "is now" if leading else "stopped")
            self._leading = leading
            self.changed.set()


class LeaseElection(Leadership):
    def __init__(self, api_client: client.ApiClient, namespace: str,
                 name: str = "provider-router-leader", lease_seconds: int = 15) -> None:
        super().__init__(leading=False)
        self.namespace, self.name, self.lease_seconds = namespace, name, lease_seconds
        self.identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        # The library builds its own API objects from the default configuration.
        client.Configuration.set_default(api_client.configuration)
        self._stopped = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._campaign, name="leader-election", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _campaign(self) -> None:
        loop = self._loop
        assert loop is not None
        while not self._stopped.is_set():
            config = electionconfig.Config(
                LeaseLock(self.name, self.namespace, self.identity),
                lease_duration=self.lease_seconds, renew_deadline=self.lease_seconds * 2 // 3,
                retry_period=max(1, self.lease_seconds // 6),
                onstarted_leading=lambda: loop.call_soon_threadsafe(self._set, True),
                onstopped_leading=lambda: loop.call_soon_threadsafe(self._set, False))
            try:
                leaderelection.LeaderElection(config).run()
            except Exception:  # a transient API error: campaign again after a pause
                log.exception("leader election failed; retrying")
            loop.call_soon_threadsafe(self._set, False)
            self._stopped.wait(2.0)
