"""Fixtures for the shared-state tests: a real redis-server per test.

Without redis-server the tests skip, saying how to install it; under CI=true they fail
instead, since CI installs it (tests/tools/install-redis.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sharedstate.redis_harness import RedisServer, in_ci, redis_binary


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = redis_binary()
    if binary is None:
        message = ("redis-server (or valkey-server) is not installed: run "
                   "tests/tools/install-redis.sh")
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    server = RedisServer(binary, tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.close()
