"""Reading usage out of answers and editing the usage the router asked for back out."""

from __future__ import annotations

import orjson
import pytest

from provider_router.proxy._proxy import _retry_after
from provider_router.proxy._usage import EventRelay, Usage, ask_for_usage


def event(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


CHUNK = {"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": None}
LAST = {"id": "c", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


def test_the_router_s_own_usage_request_is_edited_back_out() -> None:
    relay = EventRelay(Usage(), strip=True)
    out = relay.feed(event(CHUNK) + event(LAST) + b"data: [DONE]\n\n")
    assert out == event({"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}}]}) \
        + b"data: [DONE]\n\n"
    assert (relay.usage.input_tokens, relay.usage.output_tokens) == (7, 3)


def test_events_split_across_reads_wait_for_their_end_and_pass_unchanged() -> None:
    relay = EventRelay(Usage(), strip=False)
    stream = event(CHUNK) + event(LAST) + b"data: [DONE]\r\n\r\n"
    pieces = [stream[i:i + 7] for i in range(0, len(stream), 7)]
    out = b"".join(relay.feed(p) for p in pieces) + relay.flush()
    assert out == stream, "a client that asked for usage gets the stream as sent"
    assert relay.usage.output_tokens == 3


def test_anthropic_usage_from_message_start_and_delta() -> None:
    relay = EventRelay(Usage(), strip=False)
    relay.feed(b"event: message_start\n" + event(
        {"type": "message_start", "message": {"usage": {"input_tokens": 9,
                                                        "output_tokens": 1}}}))
    relay.feed(b"event: message_delta\n" + event(
        {"type": "message_delta", "usage": {"output_tokens": 12}}))
    assert (relay.usage.input_tokens, relay.usage.output_tokens) == (9, 12)


def test_bad_usage_values_count_nothing() -> None:
    usage = Usage()
    usage.take({"prompt_tokens": -5, "completion_tokens": "many"})
    usage.take_body(b'{"usage": {"prompt_tokens": true}}')
    usage.take_body(b'not json "usage"')
    assert (usage.input_tokens, usage.output_tokens) == (0, 0)


@pytest.mark.parametrize(("options", "added", "after"), [
    (None, True, {"include_usage": True}),
    ({"include_usage": True}, False, {"include_usage": True}),
    ({"include_usage": False}, True, {"include_usage": True}),
    ({"other": 1}, True, {"other": 1, "include_usage": True}),
    ("nonsense", False, "nonsense"),
])
def test_asking_for_usage(options: object, added: bool, after: object) -> None:
    body: dict[str, object] = {} if options is None else {"stream_options": options}
    assert ask_for_usage(body) is added
    assert body["stream_options"] == after


@pytest.mark.parametrize(("value", "seconds"), [
    (None, None), ("", None), ("12", 12.0), ("1.5", 1.5), ("-3", 0.0), ("99999", 3600.0),
    ("nan", None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert _retry_after(value) == seconds
