"""How many replicas of this operator serve routes, from the Service's EndpointSlices.

Replicas that share no state (no ``--state-url``) would each enforce every limit in full: a
$10 budget across three replicas would admit $30. Counting the ready endpoints of the route
Service lets each replica enforce its share instead (the limit divided by the count), and the
same count is the share a replica falls back to when its shared store does not answer before
it has ever seen the others there. EndpointSlices are read-only and need one ``list`` in the
release namespace; a read that fails keeps the last count.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes import client

log = logging.getLogger(__name__)

SERVICE_LABEL = "kubernetes.io/service-name"


def ready_endpoints(slices: list[Any]) -> int:
    """Distinct ready endpoints across ``slices`` (a dual-stack Service lists each pod once
    per address family, so endpoints are told apart by the pod they point at)."""
    seen: set[str] = set()
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.endpoints or ():
            conditions = endpoint.conditions
            if conditions is not None and conditions.ready is False:
                continue  # an unset condition means ready, as for kube-proxy
            ref = endpoint.target_ref
            seen.add(ref.uid or ref.name if ref is not None else ",".join(endpoint.addresses))
    return len(seen)


class ReplicaCount:
    """The ready replicas behind ``service`` in ``namespace``; ``count`` is None until read."""

    def __init__(self, api_client: client.ApiClient, namespace: str, service: str) -> None:
        self.namespace, self.service = namespace, service
        self._api = client.DiscoveryV1Api(api_client)
        self.count: int | None = None
        self._warned = False

    async def read(self) -> int | None:
        def call() -> list[Any]:
            listing = self._api.list_namespaced_endpoint_slice(
                self.namespace, label_selector=f"{SERVICE_LABEL}={self.service}",
                _request_timeout=5)
            return list(listing.items or [])

        try:
            slices = await asyncio.to_thread(call)
        except Exception as error:  # a courtesy read: any failure keeps the last count
            if not self._warned:
                self._warned = True
                log.warning("cannot count replicas from the EndpointSlices of Service %s/%s "
                            "(%s); keeping %s", self.namespace, self.service,
                            getattr(error, "reason", None) or error, self.count or "none")
            return self.count
        self._warned = False
        self.count = ready_endpoints(slices)
        return self.count
