"""What a replica writes to the store and reads back, and what it says about the store: pure,
no server needed."""

from __future__ import annotations

import pytest

from provider_router._defaults import DEFAULT_STATE_SYNC_MS as DEFAULT_SYNC_MS
from provider_router.cli import DEFAULT_STATE_SYNC_MS, build_parser
from provider_router.engine import FleetSnapshot, Flip, ProviderFigures
from provider_router.sharedstate import describe
from provider_router.sharedstate._wire import decode, encode_rates, encode_spend


def test_a_snapshot_survives_the_wire_with_its_times_moved() -> None:
    snap = FleetSnapshot(
        {("ns", "a"): ProviderFigures(3.0, 1200.0, 2, 1030.0, Flip("open", 1000.0, 1030.0,
                                                                    "abcd-1")),
         ("ns", "b"): ProviderFigures(1.0, 0.0, 0, None, None)},
        {("ns", "main"): 4.5})
    wall = snap.shifted(1_700_000_000.0)
    back = decode(encode_rates(wall), encode_spend(wall)).shifted(-1_700_000_000.0)
    assert back.spend == {("ns", "main"): 4.5}
    a = back.providers[("ns", "a")]
    assert (a.requests, a.tokens, a.in_flight) == (3.0, 1200.0, 2)
    assert a.cooling_until == pytest.approx(1030.0)
    assert a.flip is not None
    assert (a.flip.kind, a.flip.flip_id) == ("open", "abcd-1")
    assert a.flip.until == pytest.approx(1030.0)
    assert back.providers[("ns", "b")] == ProviderFigures(1.0, 0.0, 0, None, None)


def test_an_expired_or_unreadable_entry_counts_nothing() -> None:
    assert decode(None, None) == FleetSnapshot()
    assert decode(b'{"ns/a": [1, 2]}', b'{"ns/main": 3}') == FleetSnapshot()


def test_the_store_is_described_without_credentials() -> None:
    assert describe("redis://:s3cret@valkey.db:6380/2") == "redis://valkey.db:6380/2"
    assert describe("rediss://user:pw@cache/0") == "rediss://cache/0"


def test_cli_options_and_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_STATE_SYNC_MS == DEFAULT_SYNC_MS
    monkeypatch.delenv("PROVIDER_ROUTER_STATE_URL", raising=False)
    serve = build_parser().parse_args(["serve", "-f", "x"])
    assert (serve.state_url, serve.state_sync_ms) == (None, DEFAULT_SYNC_MS)
    monkeypatch.setenv("PROVIDER_ROUTER_STATE_URL", "redis://valkey:6379/0")
    operator = build_parser().parse_args(["operator", "-A", "--state-sync-ms", "50",
                                          "--replicas-service", "router"])
    assert (operator.state_url, operator.state_sync_ms) == ("redis://valkey:6379/0", 50)
    assert operator.replicas_service == "router"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "-f", "x", "--state-sync-ms", "0"])


def test_a_url_of_another_scheme_is_refused_without_echoing_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "-f", "x", "--state-url",
                                   "http://user:s3cret@valkey:6379"])
    err = capsys.readouterr().err
    assert "must be redis://" in err
    assert "s3cret" not in err
