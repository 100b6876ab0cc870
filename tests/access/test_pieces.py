"""The pure parts of access control: reading credentials and tokens, wording grants, and which
mode a command runs with."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from provider_router.access import (
    AuthMode,
    grant_command,
    operator_auth_mode,
    serve_auth_mode,
    token_exp,
    warn_if_open,
)
from provider_router.access._credentials import bearer
from provider_router.service import ApiError, Request


def jwt(claims: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_token_exp_reads_the_claim_and_nothing_else() -> None:
    assert token_exp(jwt({"exp": 1_900_000_000, "aud": ["provider-router"]})) == 1.9e9
    for token in (jwt({"aud": "x"}), jwt({"exp": "soon"}), jwt({"exp": True}), jwt([1]),
                  "not-a-jwt", "a.b.c", "a.!!!.c"):
        assert token_exp(token) is None, token


@pytest.mark.parametrize(("header", "expected"), [
    (b"Bearer abc", b"abc"), (b"bearer abc", b"abc"), (b"BEARER abc", b"abc"),
    (b"  Bearer   abc  ", b"abc"), (b"bEaReR abc", b"abc")])
def test_bearer_credentials_are_read(header: bytes, expected: bytes) -> None:
    assert bearer(Request("GET", "/", headers={b"authorization": header})) == expected


@pytest.mark.parametrize("header", [b"Basic abc", b"Bearer", b"Bearer ", b"Bearer a b",
                                    b"abc", b""])
def test_other_authorization_headers_are_invalid(header: bytes) -> None:
    with pytest.raises(ApiError) as refused:
        bearer(Request("GET", "/", headers={b"authorization": header}))
    assert refused.value.status == 401
    assert refused.value.details["reason"] == "invalid_credential"
    assert dict(refused.value.headers)[b"www-authenticate"].endswith(b'error="invalid_token"')


def test_a_missing_credential_says_so() -> None:
    with pytest.raises(ApiError) as refused:
        bearer(Request("GET", "/"))
    assert refused.value.details["reason"] == "missing_credential"
    assert dict(refused.value.headers)[b"www-authenticate"] == b'Bearer realm="provider-router"'
    assert bearer(Request("GET", "/", headers={b"x-api-key": b" k "}), api_key_header=True) \
        == b"k"


def test_grant_commands_name_the_subject() -> None:
    assert grant_command("system:serviceaccount:team-a:worker", "team-a") == (
        "kubectl create rolebinding provider-router-user-worker "
        "--clusterrole=provider-router-user --serviceaccount=team-a:worker -n team-a")
    assert grant_command("alice@example.com", "team-b") == (
        "kubectl create rolebinding provider-router-user --clusterrole=provider-router-user "
        "--user=alice@example.com -n team-b")


def test_default_modes(caplog: pytest.LogCaptureFixture) -> None:
    assert operator_auth_mode(None) is AuthMode.NONE
    assert operator_auth_mode(None, proxy=True) is AuthMode.KUBERNETES
    assert operator_auth_mode("none", proxy=True) is AuthMode.NONE
    assert serve_auth_mode(None) is AuthMode.NONE
    assert serve_auth_mode("keys") is AuthMode.KEYS
    with caplog.at_level(logging.WARNING):
        assert warn_if_open(AuthMode.NONE, proxy=True)
        assert not warn_if_open(AuthMode.NONE, proxy=False)
        assert not warn_if_open(AuthMode.KUBERNETES, proxy=True)
    assert len([r for r in caplog.records if "--auth none with --proxy" in r.getMessage()]) == 1


@pytest.mark.parametrize(("module", "forbidden"), [
    ("provider_router.client", ("provider_router.service", "provider_router.access",
                                "provider_router.operator", "kubernetes", "kopf")),
    ("provider_router.access", ("provider_router.operator", "provider_router.standalone",
                                "provider_router.cli", "kopf")),
])
def test_layering(module: str, forbidden: tuple[str, ...]) -> None:
    """The client stays free of server code; access is an edge below operator and standalone."""
    import subprocess
    import sys

    code = (f"import sys, {module}; print('\\n'.join(sorted(m for m in sys.modules "
            f"if m.startswith({forbidden!r}))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True).stdout.split()
    assert loaded == []


def test_only_service_accounts_have_a_namespace() -> None:
    """A request that names no namespace uses its caller's: a ServiceAccount's own, and none
    for any other user (which then lands on the fallback namespace)."""
    from provider_router.access._errors import service_account
    from provider_router.access._kubernetes import _Identity
    from provider_router.access._reviews import UserInfo

    assert service_account("system:serviceaccount:team-a:worker") == ("team-a", "worker")
    for user in ("alice@example.com", "system:serviceaccount:team-a",
                 "system:serviceaccount::worker", "system:serviceaccount:team-a:",
                 "system:serviceaccount:a:b:c", "system:admin"):
        assert service_account(user) is None, user
    assert _Identity(UserInfo("system:serviceaccount:team-a:worker"), 1.0).namespace == "team-a"
    assert _Identity(UserInfo("alice@example.com"), 1.0).namespace is None
    assert _Identity(None, 1.0).namespace is None
