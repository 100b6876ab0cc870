"""Kopf wiring: the settings we choose, the login, and the watch-event handlers.

Only ``on.event`` handlers are registered. They run for every event, the initial listing
included, write nothing through Kopf and need no finalizer, so deleting a resource is never
blocked by the operator being down or busy, and a restart causes no writes of Kopf's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import client

from provider_router.api import GROUP, VERSION
from provider_router.operator._reconciler import Reconciler


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # Our handlers keep no progress, but should Kopf ever store any, it goes to annotations
    # under our group and never into status, where the CRD's schema is ours alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    # No handler requires a finalizer; name ours so that none of Kopf's default ever appears.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Every replica must keep watching to keep its table fresh; who probes and writes status
    # is decided by a Lease (see _leader), so Kopf's peering, which freezes the followers'
    # watches, stays off.
    settings.peering.standalone = True
    # Bounded watches: the server ends each one within 5 minutes and Kopf reconnects from the
    # last resourceVersion; a stream silent for longer than that is presumed dead.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = 330
    settings.networking.request_timeout = 30
    # Kopf would post its own log lines as Events; ours are posted on flips only. Let Kopf post
    # nothing below a warning, so Events stay meaningful.
    settings.posting.level = logging.WARNING
    return settings


def login_from(api_client: client.ApiClient) -> Callable[..., kopf.ConnectionInfo]:
    """Kopf's credentials from the same configuration as the operator's own client."""
    configuration = api_client.configuration

    def login(**_: Any) -> kopf.ConnectionInfo:
        header = str(configuration.get_api_key_with_prefix("BearerToken")
                     or configuration.get_api_key_with_prefix("authorization") or "")
        scheme, _sep, token = header.partition(" ")
        return kopf.ConnectionInfo(
            server=configuration.host, ca_path=configuration.ssl_ca_cert,
            insecure=not configuration.verify_ssl, scheme=scheme or None,
            token=token or None, certificate_path=configuration.cert_file,
            private_key_path=configuration.key_file)

    return login


def build_registry(reconciler: Reconciler, api_client: client.ApiClient,
                   on_change: Callable[[], None]) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login_from(api_client))

    @kopf.on.event(GROUP, VERSION, "llmproviders", registry=registry)
    async def provider_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        await reconciler.provider_event(type, body)
        on_change()

    @kopf.on.event(GROUP, VERSION, "routingpolicies", registry=registry)
    async def policy_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        await reconciler.policy_event(type, body)
        on_change()

    def referenced(body: kopf.Body, **_: Any) -> bool:
        metadata = body.get("metadata", {})
        return reconciler.secret_is_referenced(metadata.get("namespace", ""),
                                               metadata.get("name", ""))

    @kopf.on.event("", "v1", "secrets", registry=registry, when=referenced)
    async def secret_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        await reconciler.secret_event(type, body)
        on_change()

    return registry
