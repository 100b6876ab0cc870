"""How a replica's snapshot looks in the store: compact JSON with wall-clock times.

Engine times come from each process's monotonic clock, which means nothing to another process,
so every time is moved to wall-clock seconds on the way out and back on the way in. Entries
this version cannot read (written by another version) are skipped, not fatal: a mixed fleet
during a rollout must keep routing.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from provider_router.engine import FleetSnapshot, Flip, ProviderFigures

log = logging.getLogger(__name__)


def _name(key: tuple[str, str]) -> str:
    return f"{key[0]}/{key[1]}"


def _key(name: str) -> tuple[str, str]:
    namespace, _, rest = name.partition("/")
    return namespace, rest


def encode_rates(snapshot: FleetSnapshot) -> bytes:
    """The provider part: requests, tokens, in-flight, cooldown and latest circuit flip."""
    providers: dict[str, list[Any]] = {}
    for key, fig in snapshot.providers.items():
        flip = fig.flip
        providers[_name(key)] = [
            fig.requests, fig.tokens, fig.in_flight, fig.cooling_until,
            None if flip is None else [flip.kind, flip.at, flip.until, flip.flip_id]]
    return orjson.dumps(providers)


def encode_spend(snapshot: FleetSnapshot) -> bytes:
    return orjson.dumps({_name(k): v for k, v in snapshot.spend.items()})


def decode(rates: bytes | str | None, spend: bytes | str | None) -> FleetSnapshot:
    """One replica's snapshot from its two entries (either may have expired: None)."""
    out = FleetSnapshot()
    try:
        for name, row in (orjson.loads(rates) if rates else {}).items():
            requests, tokens, in_flight, cooling, flip = row
            out.providers[_key(name)] = ProviderFigures(
                float(requests), float(tokens), int(in_flight),
                None if cooling is None else float(cooling),
                None if flip is None else Flip(str(flip[0]), float(flip[1]),
                                               None if flip[2] is None else float(flip[2]),
                                               str(flip[3])))
        for name, amount in (orjson.loads(spend) if spend else {}).items():
            out.spend[_key(name)] = float(amount)
    except (ValueError, TypeError, IndexError, AttributeError) as error:
        log.warning("skipping a shared-state entry this version cannot read: %s", error)
        return FleetSnapshot()
    return out
