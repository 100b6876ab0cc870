"""Health probing of providers over HTTP (httpx); results feed the routing engine."""

from provider_router.health._probe import auth_headers, probe, probe_url

__all__ = ["auth_headers", "probe", "probe_url"]
