"""Fixtures for the engine's tests."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from provider_router.engine import RoutingTable
from support.engine import FakeClock, provider


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> RoutingTable:
    return RoutingTable(clock=clock, rng=random.Random(1234), lease_ttl=60.0)


AddProviders = Callable[..., None]


@pytest.fixture
def add(table: RoutingTable) -> AddProviders:
    """``add(name=fields, ...)`` registers providers in namespace ``ns``."""

    def _add(**providers: dict[str, Any]) -> None:
        for name, fields in providers.items():
            labels = fields.pop("labels", {})
            table.upsert_provider("ns", name, provider(**fields), labels)

    return _add
