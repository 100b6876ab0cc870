"""Every default the router's modes share, in one place.

The CLI, standalone mode, the operator, the engine and the client library all read these, so
that a default changes once and the modes cannot drift apart. Nothing here imports anything:
it sits below every layer, the engine included.
"""

from __future__ import annotations

from typing import Final

DEFAULT_HOST: Final = "127.0.0.1"
"""Where ``serve`` and the demo listen: loopback, until told otherwise."""
DEFAULT_OPERATOR_HOST: Final = "0.0.0.0"
"""Where the operator listens: in a Pod, the Service must reach it."""
DEFAULT_PORT: Final = 8080
DEFAULT_URL: Final = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
"""Where the client library and CLI look for the router by default."""
DEFAULT_LIVENESS_PORT: Final = 8081

DEFAULT_LEASE_TTL: Final = 120.0
"""Seconds a route's lease holds its provider's slot if never reported: longer than most
LLM calls, short enough that a crashed workload's leases come back soon."""

DEFAULT_PROBE_CONCURRENCY: Final = 32
DEFAULT_PROBE_INITIAL_DELAY: Final = 1.0
"""A probe loop's first probe comes after a random delay of up to this, so that a large table
does not probe everything at once on start."""

DEFAULT_STATE_SYNC_MS: Final = 200
"""How often replicas exchange their totals through the shared store (``--state-sync-ms``)."""
DEFAULT_STATE_PREFIX: Final = "provider-router"
"""The shared store's key prefix; the operator adds its election Lease's name."""

DEFAULT_NAMESPACE: Final = "default"
"""The namespace of a request that names none, when the caller's own namespace does not have
the policy asked for (or has no default policy); ``--proxy-namespace``'s default too."""

DEFAULT_AUDIENCE: Final = "provider-router"
"""The audience a workload's projected ServiceAccount token must be minted for."""

DEFAULT_PROXY_CONNECT_SECONDS: Final = 5.0
"""Connecting to a provider, per attempt (``--proxy-connect-timeout``)."""
DEFAULT_PROXY_FIRST_BYTE_SECONDS: Final = 120.0
"""A provider's answer, per attempt: a non-streamed completion is the whole generation, so it
is long (``--proxy-first-byte-timeout``)."""
DEFAULT_PROXY_IDLE_SECONDS: Final = 60.0
"""The longest silence between two chunks of an answer once it started
(``--proxy-idle-timeout``)."""
DEFAULT_PROXY_DEADLINE_SECONDS: Final = 180.0
"""All the attempts of one proxied call, failover included, until its answer starts
(``--proxy-deadline``)."""
DEFAULT_STALL_SECONDS: Final = 30.0
"""How long a stream waits for a client that reads nothing before it drops the client: far
longer than any pause of a live reader, far shorter than the connection idle timeout
(``--proxy-stall-timeout``)."""
DEFAULT_PROXY_MAX_BODY_BYTES: Final = 4 << 20
"""The largest proxied request body: a prompt with a long context, or a batch of embeddings
inputs, fits; a flood does not (``--proxy-max-body-bytes``)."""
