"""Token counts from providers' answers, and the SSE editing that asking for them needs.

A non-streamed answer carries ``usage`` in its JSON. A streamed one carries it in its events:
Anthropic's ``message_start`` (input) and ``message_delta`` (output), and OpenAI's last chunk,
but only when the request set ``stream_options.include_usage``. The router asks for it on the
client's behalf and then edits the stream back into what the client asked for: the extra
usage chunk is dropped and the ``"usage": null`` that every other chunk then carries is
removed. Only events that mention ``usage`` are parsed; the rest pass as they came.

Events are split on their blank-line boundary, so an event cut across two reads waits for its
end, and every complete event is forwarded as soon as it is complete.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

_BOUNDARY: Final = re.compile(rb"\r?\n\r?\n")
MAX_PENDING_EVENT_BYTES: Final = 1 << 20
"""An event longer than this is passed through unparsed rather than buffered further."""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class Usage:
    """Tokens seen so far in one answer."""

    __slots__ = ("input_tokens", "output_tokens")

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0

    def take(self, usage: Any) -> None:
        """Read an OpenAI (``prompt_tokens``/``completion_tokens``) or Anthropic
        (``input_tokens``/``output_tokens``) usage object; later counts replace earlier."""
        if not isinstance(usage, dict):
            return
        for key in ("prompt_tokens", "input_tokens"):
            if key in usage:
                self.input_tokens = max(self.input_tokens, _int(usage[key]))
        for key in ("completion_tokens", "output_tokens"):
            if key in usage:
                self.output_tokens = max(self.output_tokens, _int(usage[key]))

    def take_body(self, body: bytes) -> None:
        """The usage of a whole JSON answer (ignored when it is not JSON)."""
        if b'"usage"' not in body:
            return
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(parsed, dict):
            self.take(parsed.get("usage"))


class EventRelay:
    """Feeds an SSE byte stream through, event by event, noting usage on the way.

    ``strip`` is set when the router itself asked an OpenAI provider for usage: the events
    are then edited back to what the client would have received without it.
    """

    __slots__ = ("_pending", "strip", "usage")

    def __init__(self, usage: Usage, strip: bool) -> None:
        self.usage = usage
        self.strip = strip
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """What to forward now for ``chunk``: the complete events it ends, edited."""
        data = self._pending + chunk if self._pending else chunk
        if b'"usage"' not in data and not self.strip and data.endswith((b"\n\n", b"\r\n\r\n")):
            self._pending = b""
            return data  # the common case: whole events, nothing to read or edit
        out: list[bytes] = []
        start = 0
        for match in _BOUNDARY.finditer(data):
            end = match.end()
            out.append(self._event(data[start:end]))
            start = end
        rest = data[start:]
        if len(rest) > MAX_PENDING_EVENT_BYTES:
            out.append(rest)
            rest = b""
        self._pending = rest
        return b"".join(out)

    def flush(self) -> bytes:
        """Whatever is left when the stream ends (an event without its blank line)."""
        rest, self._pending = self._pending, b""
        return self._event(rest) if rest else b""

    def _event(self, event: bytes) -> bytes:
        if b'"usage"' not in event:
            return event
        lines = event.split(b"\n")
        for index, line in enumerate(lines):
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            try:
                parsed = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return event
            if not isinstance(parsed, dict):
                return event
            self.usage.take(parsed.get("usage"))
            message = parsed.get("message")
            if isinstance(message, dict):  # Anthropic's message_start
                self.usage.take(message.get("usage"))
            if not self.strip or "usage" not in parsed:
                return event
            if parsed.get("usage") is not None and parsed.get("choices") == []:
                return b""  # the extra chunk the client did not ask for
            del parsed["usage"]
            lines[index] = b"data: " + orjson.dumps(parsed) + (b"\r" if line.endswith(b"\r")
                                                               else b"")
            return b"\n".join(lines)
        return event


def ask_for_usage(body: dict[str, Any]) -> bool:
    """Set ``stream_options.include_usage`` on an OpenAI stream request. True when the
    router added it (the client did not ask), so the stream must be edited back."""
    options = body.get("stream_options")
    if isinstance(options, dict):
        if options.get("include_usage") is True:
            return False
        body["stream_options"] = {**options, "include_usage": True}
        return True
    if options is None:
        body["stream_options"] = {"include_usage": True}
        return True
    return False  # something the provider will refuse; leave it to say so


__all__ = ["EventRelay", "Usage", "ask_for_usage"]
