"""Namespaces that tests create on the real API server and delete afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def temporary_namespace(api_client: Any, name: str) -> Iterator[str]:
    """Create namespace ``name``; delete it on the way out, without waiting for it to go."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status not in (404, 409):  # already gone / already terminating
                raise
