"""Applying manifests to a routing table as a diff, so reloads keep what the router learned."""

from __future__ import annotations

from provider_router.api import CircuitState
from provider_router.engine import Outcome, OutcomeKind, RouteRequest, RoutingTable
from provider_router.manifests import apply_manifests, parse_manifests


def provider(name: str, *, priority: int = 0, tier: str = "a") -> str:
    return f"""\
---
apiVersion: router.zoeyos.io/v1alpha1
kind: LLMProvider
metadata: {{name: {name}, labels: {{tier: {tier}}}}}
spec: {{baseURL: "http://127.0.0.1:9/{name}", priority: {priority}, capabilities: [chat]}}
"""


POLICY = """\
---
apiVersion: router.zoeyos.io/v1alpha1
kind: RoutingPolicy
metadata: {name: main}
spec: {strategy: Priority, default: true, failover: {failureThreshold: 2, cooldownSeconds: 60}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_apply_adds_everything() -> None:
    table = RoutingTable()
    result = apply_manifests(table, parse_manifests(provider("a") + provider("b") + POLICY))
    assert result.added == ("LLMProvider default/a", "LLMProvider default/b",
                            "RoutingPolicy default/main")
    assert not result.updated
    assert not result.removed
    assert result.changed
    assert table.route(RouteRequest()).policy == "main"


def test_reapplying_the_same_set_changes_nothing() -> None:
    table = RoutingTable()
    manifests = parse_manifests(provider("a") + POLICY)
    apply_manifests(table, manifests)
    version = table.version
    result = apply_manifests(table, parse_manifests(provider("a") + POLICY))
    assert not result.changed
    assert result.unchanged == 2
    assert table.version == version


def test_diff_updates_changed_and_removes_vanished_keeping_runtime_state() -> None:
    clock = Clock()
    table = RoutingTable(clock=clock)
    apply_manifests(table, parse_manifests(provider("a", priority=5) + provider("b") + POLICY))
    # Teach the table something: a's circuit opens after two reported failures, and a lease
    # on b is in flight.
    for _ in range(2):
        table.report(Outcome(OutcomeKind.ERROR, provider="a", namespace="default"))
    decision = table.route(RouteRequest())
    assert decision.target.provider.name == "b"

    result = apply_manifests(table, parse_manifests(
        provider("a", priority=6) + provider("b") + provider("c") + POLICY))
    assert result.updated == ("LLMProvider default/a",)
    assert result.added == ("LLMProvider default/c",)
    state_a = table.provider("default", "a")
    assert state_a.spec.priority == 6
    assert state_a.breaker.state(clock.now) is CircuitState.OPEN
    assert table.provider("default", "b").in_flight == 1

    result = apply_manifests(table, parse_manifests(provider("b") + POLICY))
    assert result.removed == ("LLMProvider default/a", "LLMProvider default/c")
    assert [s.key for s in table.providers()] == [("default", "b")]
    # The lease taken before the reloads is still known and releases normally.
    assert decision.lease_id is not None
    table.report(Outcome(OutcomeKind.SUCCESS, lease_id=decision.lease_id))
    assert table.provider("default", "b").in_flight == 0


def test_policy_removal_and_label_changes() -> None:
    table = RoutingTable()
    apply_manifests(table, parse_manifests(provider("a") + POLICY))
    result = apply_manifests(table, parse_manifests(provider("a", tier="b")))
    assert result.removed == ("RoutingPolicy default/main",)
    assert result.updated == ("LLMProvider default/a",)
    assert table.provider("default", "a").labels == {"tier": "b"}
    assert table.policies() == []
