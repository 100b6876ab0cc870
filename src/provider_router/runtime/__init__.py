"""The parts both modes run, wired once: standalone mode and the operator differ only in
where the table's contents and the credentials come from.

``RuntimeSettings`` holds every knob the modes share (with the defaults of ``_defaults``), and
``Runtime`` builds the routing table, metrics, route API, server and prober from it.
"""

from provider_router.runtime._runtime import Runtime
from provider_router.runtime._settings import RuntimeSettings

__all__ = ["Runtime", "RuntimeSettings"]
