"""Which wire format a provider speaks, as a capability every route can require.

A proxied call is forwarded as it came, never translated, so an OpenAI-format request must
only reach a provider that speaks OpenAI's API and an Anthropic ``/v1/messages`` request only
one that speaks Anthropic's. Rather than a second filter beside capabilities, each provider
carries one implicit capability naming its wire format: the pools, the explanations ("lacks
wire:anthropic") and the caches that key on capabilities then cover it with no new code. The
names carry a ``wire:`` prefix so that they cannot be mistaken for a capability of a spec.
"""

from __future__ import annotations

from typing import Final

from provider_router.api import ApiFormat

WIRE_OPENAI: Final = "wire:openai"
"""Spoken by ``openai``, ``vllm``, ``ollama`` and ``generic`` providers (their OpenAI API)."""
WIRE_ANTHROPIC: Final = "wire:anthropic"
"""Spoken by ``anthropic`` providers (``/v1/messages``)."""

_WIRE_OF: Final = {
    ApiFormat.OPENAI: WIRE_OPENAI,
    ApiFormat.VLLM: WIRE_OPENAI,
    ApiFormat.OLLAMA: WIRE_OPENAI,
    ApiFormat.GENERIC: WIRE_OPENAI,
    ApiFormat.ANTHROPIC: WIRE_ANTHROPIC,
}


def wire_capability(api_format: ApiFormat) -> str:
    """The implicit capability of a provider whose ``apiFormat`` is ``api_format``."""
    return _WIRE_OF[api_format]


__all__ = ["WIRE_ANTHROPIC", "WIRE_OPENAI", "wire_capability"]
