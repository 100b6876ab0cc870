"""Fixtures for the operator's tests: the CRDs applied to the real API server, local HTTP
servers standing in for LLM providers, and the operator itself running in the test's loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from provider_router.mock_provider import MockProvider
from support.operator_harness import (
    REPO,
    BackgroundLoop,
    Kube,
    RunningOperator,
    start_operator,
)


@pytest.fixture(scope="session")
def crds(k8s: Any) -> None:
    result = k8s.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    assert result.returncode == 0, result.stderr
    result = k8s.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="session")
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture
def mock_providers(background: BackgroundLoop) -> Iterator[Callable[[], MockProvider]]:
    started: list[MockProvider] = []

    def make() -> MockProvider:
        provider = MockProvider("mock")
        background.run(provider.start())
        started.append(provider)
        return provider

    yield make
    for provider in started:
        background.run(provider.stop())


@pytest.fixture
def kube(k8s: Any, namespace: str, crds: None) -> Kube:
    return Kube(k8s, namespace)


@pytest.fixture
def operator(k8s: Any, namespace: str, crds: None,
             background: BackgroundLoop) -> Iterator[RunningOperator]:
    running = start_operator(background, str(k8s.kubeconfig), namespace)
    yield running
    if not running.task.done():
        running.stop()
