"""Rate-limit headers, as OpenAI and Anthropic send them on every answer, parsed without I/O.

Providers say how much of their own limit is left long before they answer 429. This module turns
those headers into one ``RateLimitInfo``, whatever the spelling, so that every caller that sees
a provider's answer (the report endpoint, from headers a client forwarded; a proxy, from the
answer it relays) feeds the table the same figures through ``RoutingTable.record_rate_limit``.

Spellings read:

- OpenAI: ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
  ``x-ratelimit-reset-requests`` and the same three for ``-tokens``. Resets are Go-style
  durations: ``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``.
- Anthropic: ``anthropic-ratelimit-requests-limit``, ``-requests-remaining``,
  ``-requests-reset`` and the same for ``tokens``. Resets are RFC 3339 instants.

A reset is held to at most ``MAX_RESET_SECONDS``: a provider (or a forged header) must not be
able to keep itself excluded for days.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

MAX_RESET_SECONDS: Final = 3600.0
"""The longest reset believed: anything later is taken as an hour."""

HEADER_PREFIXES: Final = ("x-ratelimit-", "anthropic-ratelimit-")
"""Every header this module reads starts with one of these: what a client needs to forward."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6,
                 "ns": 1e-9}

# (figure, OpenAI header, Anthropic header)
_SPELLINGS: Final = (
    ("limit_requests", "x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit"),
    ("remaining_requests", "x-ratelimit-remaining-requests",
     "anthropic-ratelimit-requests-remaining"),
    ("reset_requests", "x-ratelimit-reset-requests", "anthropic-ratelimit-requests-reset"),
    ("limit_tokens", "x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-limit"),
    ("remaining_tokens", "x-ratelimit-remaining-tokens", "anthropic-ratelimit-tokens-remaining"),
    ("reset_tokens", "x-ratelimit-reset-tokens", "anthropic-ratelimit-tokens-reset"),
)


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a provider said about its own limits. Resets are seconds from when it said so."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_seconds: float | None = None
    reset_tokens_seconds: float | None = None
    limit_requests: int | None = None
    limit_tokens: int | None = None

    @property
    def empty(self) -> bool:
        return self.remaining_requests is None and self.remaining_tokens is None


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``20ms``) or a plain number of seconds."""
    text = text.strip()
    if not text:
        return None
    try:
        return _capped(float(text))
    except ValueError:
        pass
    total, position = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return _capped(total) if position == len(text) else None


def parse_reset(text: str, now: float) -> float | None:
    """Seconds until a reset given as a duration or an RFC 3339 instant (``now``: epoch
    seconds, the time the answer was received)."""
    seconds = parse_duration(text)
    if seconds is not None:
        return seconds
    try:
        instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if instant.tzinfo is None:
        return None
    return _capped(instant.timestamp() - now)


def parse_rate_limit_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]], *,
                             now: float) -> RateLimitInfo | None:
    """The rate-limit figures in ``headers`` (any case), or None if they carry none.

    ``now`` is the wall-clock time (epoch seconds) the answer was received, for the RFC 3339
    resets. Malformed values are ignored one by one, never raised: a header is a hint.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    lowered = {k.lower(): v for k, v in items if k.lower().startswith(HEADER_PREFIXES)}
    if not lowered:
        return None
    found: dict[str, int | float] = {}
    for figure, openai, anthropic in _SPELLINGS:
        raw = lowered.get(openai, lowered.get(anthropic))
        if raw is None:
            continue
        value: int | float | None = (parse_reset(raw, now) if figure.startswith("reset")
                                     else _count(raw))
        if value is not None:
            found[figure] = value
    info = RateLimitInfo(
        remaining_requests=_int(found.get("remaining_requests")),
        remaining_tokens=_int(found.get("remaining_tokens")),
        reset_requests_seconds=found.get("reset_requests"),
        reset_tokens_seconds=found.get("reset_tokens"),
        limit_requests=_int(found.get("limit_requests")),
        limit_tokens=_int(found.get("limit_tokens")))
    return None if info.empty else info


def _count(text: str) -> int | None:
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def _int(value: int | float | None) -> int | None:
    return None if value is None else int(value)


def _capped(seconds: float) -> float | None:
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RESET_SECONDS)
