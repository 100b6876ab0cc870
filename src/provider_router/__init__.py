"""zoey-provider-router: route LLM requests across providers declared as Kubernetes resources.

The embedded API (``ProviderRouter`` and friends) is importable from here, but loaded lazily
(PEP 562): ``import provider_router`` costs nothing until one of these names is used. The
console script imports ``provider_router.cli`` through this package, and ``provider-router
--help`` must answer as fast as kubectl or helm do, so this module imports no engine, pydantic
or httpx of its own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provider_router._embedded import (
        AllProvidersFailed,
        HealthReport,
        NoProviderAvailable,
        ProviderInfo,
        ProviderMetrics,
        ProviderRouter,
        ProviderStatus,
        RouterConfig,
        RouteRequirements,
        RoutingStrategy,
    )

__version__ = "0.1.0"

__all__ = [
    "AllProvidersFailed",
    "HealthReport",
    "NoProviderAvailable",
    "ProviderInfo",
    "ProviderMetrics",
    "ProviderRouter",
    "ProviderStatus",
    "RouteRequirements",
    "RouterConfig",
    "RoutingStrategy",
    "__version__",
]

_EMBEDDED = frozenset(__all__) - {"__version__"}
"""The names served from ``provider_router._embedded`` on first use."""


def __getattr__(name: str) -> Any:
    if name in _EMBEDDED:
        value = getattr(importlib.import_module("provider_router._embedded"), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EMBEDDED})
