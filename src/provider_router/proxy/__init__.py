"""Proxy mode: an OpenAI- and Anthropic-compatible data plane on the route API's port.

A workload points its SDK's ``base_url`` at the router (``http://ROUTER/v1`` for the default
policy, ``http://ROUTER/proxy/NS/POLICY/v1`` for a named one). The router picks a provider
with the same engine as ``/v1/route``, calls it with that provider's credential (the caller's
own never travels), streams the answer back, fails over before the answer has started, and
reports every attempt to the engine itself.

``Proxy(service, credential_for=..., options=ProxyOptions(...)).mount()`` adds the endpoints
to a ``RouteService``; ``await proxy.close()`` closes its upstream connections.
"""

from provider_router.proxy._formats import ENDPOINTS, Endpoint
from provider_router.proxy._options import MAX_UPSTREAM_BODY_BYTES, ProxyOptions
from provider_router.proxy._proxy import PREFIX, Proxy

__all__ = ["ENDPOINTS", "MAX_UPSTREAM_BODY_BYTES", "PREFIX",
           "Endpoint", "Proxy", "ProxyOptions"]
