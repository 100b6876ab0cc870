"""The few Kubernetes API calls the operator makes itself, beside Kopf's watches.

Kopf watches and lists; this module writes status, posts events, reads Secrets and checks that
the API server answers. The official client is synchronous, so each call runs in a worker thread
and the event loop that serves routes never blocks on the API server.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from provider_router.api import GROUP, VERSION

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config when running in a Pod, else the kubeconfig (``$KUBECONFIG``)."""
    if kubeconfig is None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        except config.ConfigException:
            pass
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration)
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    plural: str
    namespace: str
    name: str
    uid: str | None = None


class KubeClient:
    def __init__(self, api_client: client.ApiClient, *, component: str = "provider-router",
                 instance: str = "") -> None:
        self.api_client = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._version = client.VersionApi(api_client)
        self.component = component
        self.instance = instance

    async def patch_status(self, ref: ObjectRef, status: JsonDict) -> JsonDict | None:
        """Merge-patch ``status`` through the status subresource; None if the object is gone."""
        def call() -> JsonDict:
            result = self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, ref.namespace, ref.plural, ref.name, {"status": status})
            return cast(JsonDict, result)
        try:
            return await asyncio.to_thread(call)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def post_event(self, ref: ObjectRef, event_type: str, reason: str,
                         message: str) -> None:
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{ref.name}.", namespace=ref.namespace),
            involved_object=client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}", kind=ref.kind, name=ref.name,
                namespace=ref.namespace, uid=ref.uid),
            type=event_type, reason=reason, message=message[:1024],
            first_timestamp=now, last_timestamp=now, count=1,
            source=client.V1EventSource(component=self.component),
            reporting_component=self.component, reporting_instance=self.instance or None)
        try:
            await asyncio.to_thread(self._core.create_namespaced_event, ref.namespace, body)
        except ApiException as error:
            # An event is a courtesy: losing one must never fail a reconciliation.
            log.warning("could not post event %s on %s/%s: %s", reason, ref.namespace,
                        ref.name, error.reason)

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data, decoded; None if it does not exist."""
        try:
            secret = await asyncio.to_thread(self._core.read_namespaced_secret, name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return decode_secret_data(
            {k: str(v) for k, v in (secret.data or {}).items()},
            {k: str(v) for k, v in (secret.string_data or {}).items()})

    async def list_objects(self, plural: str, namespaces: list[str] | None) -> list[JsonDict]:
        def call(namespace: str | None) -> list[JsonDict]:
            if namespace is None:
                listing = self._custom.list_cluster_custom_object(GROUP, VERSION, plural)
            else:
                listing = self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                     plural)
            return cast(list[JsonDict], cast(JsonDict, listing).get("items", []))

        if namespaces is None:
            return await asyncio.to_thread(call, None)
        found: list[JsonDict] = []
        for namespace in namespaces:
            found.extend(await asyncio.to_thread(call, namespace))
        return found

    async def ping(self) -> bool:
        """Whether the API server answers now."""
        try:
            await asyncio.to_thread(self._version.get_code, _request_timeout=5)
        except Exception:
            return False
        return True


def decode_secret_data(data: dict[str, str], string_data: dict[str, str]) -> dict[str, str]:
    decoded = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            continue  # a binary value cannot be a credential header; treat as missing
    decoded.update(string_data)
    return decoded
