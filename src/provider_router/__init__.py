"""zoey-provider-router: route LLM requests across providers declared as Kubernetes resources.

The embedded API (``ProviderRouter`` and friends) is importable from here; the operator, the
route service and the CLI live in their own modules so that importing this package stays cheap.
"""

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
