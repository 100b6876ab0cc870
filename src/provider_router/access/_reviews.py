"""The two Kubernetes API calls behind ``--auth kubernetes``: TokenReview and
SubjectAccessReview, over httpx.

Why not the official client the operator uses for everything else: it is synchronous, so each
review would hold a worker thread for as long as the API server takes, and a burst of new
callers would queue behind the thread pool with no deadline of their own. httpx is asynchronous
and every call has a timeout. The connection settings (server, CA, client certificate, bearer
token with its in-cluster refresh) still come from the official client's ``Configuration``, so
the router reaches the API server exactly as the operator does.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from provider_router.access._errors import RESOURCE, VERB
from provider_router.api import GROUP

log = logging.getLogger(__name__)

TOKEN_REVIEWS: Final = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
DEFAULT_TIMEOUT: Final = 5.0


class ReviewFailed(Exception):
    """The API server could not answer a review: unreachable, too slow, or it refused the
    router's own credentials. Never a reason to let a caller in."""


@dataclass(frozen=True)
class UserInfo:
    """Who a TokenReview says the caller is."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenVerdict:
    user: UserInfo | None
    """None when the API server did not accept the token."""
    error: str = ""
    """Why not, in the API server's words (it never contains the token)."""


class ReviewClient:
    """Sends reviews to one API server. ``headers`` is called for every call, so a rotating
    credential (the in-cluster token file) is read fresh."""

    def __init__(self, server: str, *, verify: ssl.SSLContext | bool = True,
                 headers: Callable[[], Mapping[str, str]] = dict,
                 cert: tuple[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 proxy: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if cert is not None and isinstance(verify, ssl.SSLContext):
            verify.load_cert_chain(*cert)
        elif cert is not None:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            context.load_cert_chain(*cert)
            verify = context
        self.server = server.rstrip("/")
        self._headers = headers
        # trust_env=False: an HTTP(S)_PROXY meant for the internet must not carry tokens; the
        # kubeconfig's own proxy-url is honoured.
        self._http = httpx.AsyncClient(base_url=self.server, verify=verify, timeout=timeout,
                                       trust_env=False, proxy=proxy, transport=transport)

    @classmethod
    def from_configuration(cls, configuration: Any, *,
                           timeout: float = DEFAULT_TIMEOUT) -> ReviewClient:
        """From a ``kubernetes.client.Configuration`` (the operator's, or a loaded one)."""
        verify: ssl.SSLContext | bool
        if configuration.verify_ssl:
            verify = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        else:
            verify = False
        cert = ((configuration.cert_file, configuration.key_file)
                if configuration.cert_file else None)

        def headers() -> dict[str, str]:
            found: dict[str, str] = {}
            for setting in configuration.auth_settings().values():
                if setting.get("in") == "header" and setting.get("value"):
                    found[setting["key"]] = setting["value"]
            return found

        return cls(configuration.host, verify=verify, headers=headers, cert=cert,
                   timeout=timeout, proxy=configuration.proxy or None)

    @classmethod
    def load(cls, kubeconfig: str | None = None, *,
             timeout: float = DEFAULT_TIMEOUT) -> ReviewClient:
        """In-cluster config when running in a Pod, else the kubeconfig (``$KUBECONFIG``).
        Raises ``ReviewFailed`` when there is neither."""
        from kubernetes import client, config

        configuration = client.Configuration()
        if kubeconfig is None:
            try:
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration)
                return cls.from_configuration(configuration, timeout=timeout)
            except config.ConfigException:
                pass
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration)
        except (config.ConfigException, OSError) as error:
            raise ReviewFailed(f"--auth kubernetes needs a Kubernetes API server to review "
                               f"tokens: no in-cluster config and no kubeconfig ({error})"
                               ) from None
        return cls.from_configuration(configuration, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _create(self, path: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        group_version = path.split("/apis/", 1)[1].rsplit("/", 1)[0]
        body = {"apiVersion": group_version, "kind": kind, "spec": spec}
        try:
            response = await self._http.post(path, json=body, headers=self._headers())
        except httpx.HTTPError as error:
            raise ReviewFailed(f"cannot reach the Kubernetes API server at {self.server}: "
                               f"{type(error).__name__}") from None
        if response.status_code in (401, 403):
            raise ReviewFailed(f"the API server refused the router's {kind}: HTTP "
                               f"{response.status_code}; the router's account needs 'create' "
                               f"on {path.rsplit('/', 1)[1]}")
        if response.status_code not in (200, 201):
            raise ReviewFailed(f"the API server answered a {kind} with HTTP "
                               f"{response.status_code}")
        try:
            status = response.json().get("status") or {}
        except (ValueError, AttributeError):
            raise ReviewFailed(f"the API server answered a {kind} with no JSON") from None
        if not isinstance(status, dict):
            raise ReviewFailed(f"the API server answered a {kind} without a status")
        return status

    async def review_token(self, token: str, audiences: Sequence[str]) -> TokenVerdict:
        """Who ``token`` belongs to, if the API server accepts it for one of ``audiences``."""
        spec: dict[str, Any] = {"token": token}
        if audiences:
            spec["audiences"] = list(audiences)
        status = await self._create(TOKEN_REVIEWS, "TokenReview", spec)
        if not status.get("authenticated"):
            return TokenVerdict(None, str(status.get("error") or "token not accepted")[:300])
        accepted = status.get("audiences")
        if audiences and accepted is not None and not set(accepted) & set(audiences):
            return TokenVerdict(None, "token is not for this audience")
        user = status.get("user") or {}
        username = user.get("username")
        if not isinstance(username, str) or not username:
            return TokenVerdict(None, "token review named no user")
        extra = user.get("extra") or {}
        return TokenVerdict(UserInfo(
            username=username, uid=str(user.get("uid") or ""),
            groups=tuple(str(g) for g in user.get("groups") or ()),
            extra={str(k): tuple(str(v) for v in vs) for k, vs in extra.items()
                   if isinstance(vs, list)}))

    async def may_use(self, user: UserInfo, namespace: str, policy: str) -> bool:
        """Whether ``user`` may ``use`` RoutingPolicy ``namespace/policy``."""
        spec: dict[str, Any] = {
            "user": user.username, "groups": list(user.groups),
            "resourceAttributes": {"namespace": namespace, "verb": VERB, "group": GROUP,
                                   "resource": RESOURCE, "name": policy}}
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        status = await self._create(ACCESS_REVIEWS, "SubjectAccessReview", spec)
        return bool(status.get("allowed")) and not status.get("denied")
