"""The head limit holds while a head is still arriving, and a bug of ours while parsing is
answered, not swallowed."""

from __future__ import annotations

import asyncio
import logging

import pytest

from provider_router.engine import RoutingTable
from provider_router.service import Server, create_app
from provider_router.service._native import HttpProtocol
from support.flood import flood

from .conftest import FakeClock


async def test_endless_header_lines_on_20_connections_all_get_431() -> None:
    async with Server(create_app(RoutingTable(clock=FakeClock()))) as server:
        answers = await asyncio.wait_for(flood(server.port, 20, 1 << 20), timeout=60)
    assert len(answers) == 20
    assert all(a.startswith(b"HTTP/1.1 431") for a in answers), [a[:40] for a in answers]
    assert all(b"headers_too_large" in a for a in answers)


async def test_an_error_in_a_parser_callback_is_logged_and_answered_500(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(self: HttpProtocol, url: bytes) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(HttpProtocol, "on_url", broken)
    async with Server(create_app(RoutingTable(clock=FakeClock()))) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            with caplog.at_level(logging.ERROR):
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = await asyncio.wait_for(reader.read(65536), timeout=10)
                closed = await asyncio.wait_for(reader.read(), timeout=10)
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.1 500")
    assert b"internal_error" in answer
    assert closed == b""
    assert any("parsing a request" in r.getMessage() and r.exc_info for r in caplog.records)
