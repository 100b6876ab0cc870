"""The client's credential against a real standalone router with ``--auth keys``.

Two keys with different grants tell which one was sent: ``main-key`` may use ``main`` only,
``premium-key`` ``premium`` only. A token file rotated the kubelet's way (a new directory, then
the ``..data`` symlink swapped) is picked up by the next request, with no new client.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provider_router.access import KEYS_LABEL, POLICIES_ANNOTATION
from provider_router.client import (
    AsyncRouterClient,
    ForbiddenError,
    RouterClient,
    TokenFile,
    UnauthorizedError,
)
from provider_router.demo import MockProvider
from provider_router.standalone import Standalone
from standalone.router_harness import policy_doc, provider_doc, write_docs


@dataclass
class Keyed:
    url: str
    main_key: str
    premium_key: str


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[Keyed]:
    alpha = MockProvider("alpha")
    await alpha.start()
    folder = tmp_path / "manifests"
    folder.mkdir()
    main_key, premium_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    write_docs(folder / "all.yaml", provider_doc("alpha", alpha.url), policy_doc("main"),
               policy_doc("premium", default=False),
               {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "keys", "labels": {KEYS_LABEL: "true"},
                             "annotations": {POLICIES_ANNOTATION + "m": "main",
                                             POLICIES_ANNOTATION + "p": "premium"}},
                "stringData": {"m": main_key, "p": premium_key}})
    router = Standalone(folder, port=0, probe_initial_delay=0.0, auth="keys")
    await router.start()
    try:
        yield Keyed(router.url, main_key, premium_key)
    finally:
        await router.stop()
        await alpha.stop()


class KubeletVolume:
    """A projected volume as the kubelet writes it: ``token -> ..data/token`` and
    ``..data -> ..<timestamp>``, swapped atomically on rotation."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0
        self.token = root / "token"

    def write(self, value: str) -> None:
        self.generation += 1
        stamp = self.root / f"..2026_12_01_{self.generation:02d}"
        stamp.mkdir()
        (stamp / "token").write_text(value)
        link = self.root / "..data_tmp"
        link.symlink_to(stamp.name)
        os.replace(link, self.root / "..data")
        if not self.token.is_symlink():
            self.token.symlink_to("..data/token")


async def test_a_rotated_token_file_is_read_again(keyed: Keyed, tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "volume")
    volume.root.mkdir()
    volume.write(keyed.main_key)

    def work() -> None:  # the blocking client, in a thread: the router runs on this loop
        with RouterClient(keyed.url, token_file=volume.token) as router:
            assert router.route(policy="main").policy == "main"
            with pytest.raises(ForbiddenError) as refused:
                router.route(policy="premium")
            assert refused.value.details["policy"] == "premium"
            volume.write(keyed.premium_key)
            assert router.route(policy="premium").policy == "premium"
            with pytest.raises(ForbiddenError):
                router.route(policy="main")

    await asyncio.wait_for(asyncio.to_thread(work), timeout=30)


async def test_the_async_client_sends_its_api_key(keyed: Keyed) -> None:
    async with AsyncRouterClient(keyed.url, api_key=keyed.premium_key) as router:
        route = await router.route(policy="premium")
        result = await router.report(route.lease_id, "success")
        assert result["leaseReleased"] is True
        with pytest.raises(ForbiddenError):
            await router.route(policy="main")


async def test_no_credential_or_a_wrong_one_is_unauthorized(
        keyed: Keyed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVIDER_ROUTER_API_KEY", raising=False)
    # No token file where the default points: the client still works, and sends nothing.
    monkeypatch.setenv("PROVIDER_ROUTER_TOKEN_FILE", str(tmp_path / "absent"))
    async with AsyncRouterClient(keyed.url) as router:
        with pytest.raises(UnauthorizedError) as missing:
            await router.route()
        assert missing.value.status_code == 401
        assert await router.providers()  # open endpoints need nothing
    async with AsyncRouterClient(keyed.url, api_key="wrong") as router:
        with pytest.raises(UnauthorizedError):
            await router.route()
    monkeypatch.setenv("PROVIDER_ROUTER_API_KEY", keyed.main_key)
    async with AsyncRouterClient(keyed.url) as router:
        assert (await router.route()).policy == "main"


def test_a_token_file_keeps_the_last_token_while_a_swap_is_half_done(tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path)
    volume.write("first")
    tokens = TokenFile(volume.token)
    assert tokens.token() == "first"
    assert tokens.token() == "first"
    assert tokens.reads == 1  # unchanged file: one stat, no read
    (tmp_path / "..data").unlink()  # the link is briefly gone
    assert tokens.token() == "first"
    volume.write("second")
    assert tokens.token() == "second"
    assert TokenFile(tmp_path / "nothing").token() is None


def test_the_credential_is_not_in_the_client_repr() -> None:
    key = secrets.token_urlsafe(24)
    with RouterClient("http://127.0.0.1:9", api_key=key) as router:
        auth = router._http.auth
        assert key not in repr(auth)
        assert key not in repr(router.__dict__)


async def test_concurrent_requests_share_one_file(keyed: Keyed, tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "v")
    volume.root.mkdir()
    volume.write(keyed.main_key)
    async with AsyncRouterClient(keyed.url, token_file=volume.token) as router:
        routes = await asyncio.gather(*(router.route(policy="main") for _ in range(10)))
        assert {r.policy for r in routes} == {"main"}


def test_auth_answers_map_to_typed_errors() -> None:
    import httpx

    from provider_router.client import RouterUnavailableError
    from provider_router.client._errors import error_from_response

    def answer(status: int, code: str, details: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": code, "message": "m",
                                                      "details": details or {}}})

    assert isinstance(error_from_response(answer(401, "unauthenticated")), UnauthorizedError)
    forbidden = error_from_response(answer(403, "forbidden", {"grant": "kubectl create ..."}))
    assert isinstance(forbidden, ForbiddenError)
    assert forbidden.grant == "kubectl create ..."
    assert isinstance(error_from_response(answer(503, "auth_unavailable")),
                      RouterUnavailableError)
