"""State shared across replicas through Valkey or Redis: budgets, rate limits, in-flight
counts, cooldowns and circuits that hold for the whole fleet.

``SharedState(table, url)`` runs beside the route server: every ``sync_ms`` it writes this
replica's own totals and reads the others', which the table adds when it compares limits.
Routing never waits for the store; when the store is unreachable each replica enforces its
share of every limit (the limit divided by the replicas it last saw), and says so in
``status()`` and the ``provider_router_shared_state_degraded`` gauge.
"""

from provider_router.sharedstate._sync import (
    CONNECTED,
    CONNECTING,
    DEGRADED,
    RATES_TTL,
    STATE_URL_ENV,
    SharedState,
    describe,
)

__all__ = [
    "CONNECTED",
    "CONNECTING",
    "DEGRADED",
    "RATES_TTL",
    "STATE_URL_ENV",
    "SharedState",
    "describe",
]
