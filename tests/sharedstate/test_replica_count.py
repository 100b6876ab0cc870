"""Counting replicas from EndpointSlices: ready endpoints only, each pod once even when a
dual-stack Service lists it in one slice per address family."""

from __future__ import annotations

from kubernetes import client

from provider_router.operator._peers import ready_endpoints


def _slice(family: str, pods: dict[str, bool | None]) -> client.V1EndpointSlice:
    return client.V1EndpointSlice(address_type=family, endpoints=[
        client.V1Endpoint(addresses=[f"{family}-{name}"],
                          conditions=client.V1EndpointConditions(ready=ready),
                          target_ref=client.V1ObjectReference(kind="Pod", name=name,
                                                              uid=f"uid-{name}"))
        for name, ready in pods.items()])


def test_ready_pods_are_counted_once_across_address_families() -> None:
    pods = {"a": True, "b": None, "c": False}  # unset means ready; c is not
    assert ready_endpoints([_slice("IPv4", pods), _slice("IPv6", pods)]) == 2


def test_no_slices_no_replicas() -> None:
    assert ready_endpoints([]) == 0
    assert ready_endpoints([client.V1EndpointSlice(address_type="IPv4", endpoints=None)]) == 0
