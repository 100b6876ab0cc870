"""``--auth kubernetes``: callers present a ServiceAccount token; RBAC decides.

A request carries ``Authorization: Bearer <token>``. The API server says who the token belongs
to (TokenReview, for the router's audience) and whether that user may ``use`` the RoutingPolicy
the request names (SubjectAccessReview). That is kube-rbac-proxy's design: no user database of
our own, and platform teams grant access with the RoleBindings they already write.

The API server must not see one review per route, so both answers are cached:

* keyed by the SHA-256 of the token (the token itself is never kept), per identity a small map
  of policy decisions;
* bounded: an LRU of identities, and a separate, smaller one for refused tokens, so that a flood
  of garbage cannot evict the callers that were let in;
* briefly, and never past the token's own ``exp``: allows for ``allow_ttl`` (120 s), refusals
  for ``refuse_ttl`` (10 s), so a revoked RoleBinding or a deleted ServiceAccount stops working
  within two minutes.

A warm cache answers synchronously: ``identify`` finds the identity (one hash, one dict lookup;
it carries the ServiceAccount's namespace, so a request that names no namespace can use the
caller's without another call) and ``check`` its decision for the policy (one more). A miss
goes through ``authenticate`` and ``review``: one review per token (or per token and policy) is
in flight at a time however many requests wait for it, at most ``max_pending`` reviews wait at
all, and each has a deadline. When the API server cannot answer, cached allows go on until they
expire and everybody else gets 503: a decision that cannot be made is never a yes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar, cast

import orjson

from provider_router.access._credentials import bearer, digest
from provider_router.access._errors import (
    forbidden_by_rbac,
    service_account,
    unauthenticated,
    unavailable,
)
from provider_router.access._metrics import (
    ACCESS,
    ALLOWED,
    AUTHENTICATED,
    DENIED,
    HIT,
    INVALID,
    MISS,
    MISSING,
    TOKEN,
    UNAVAILABLE,
    AccessMetrics,
)
from provider_router.access._reviews import ReviewClient, ReviewFailed, UserInfo
from provider_router.service import ApiError, Caller, Request

log = logging.getLogger(__name__)

from provider_router._defaults import DEFAULT_AUDIENCE as DEFAULT_AUDIENCE  # noqa: E402, PLC0414

ALLOW_TTL: Final = 120.0
REFUSE_TTL: Final = 10.0
MAX_IDENTITIES: Final = 10_000
MAX_REFUSED: Final = 1_000
MAX_DECISIONS: Final = 64
"""Policies remembered per identity: a workload uses a handful."""
MAX_PENDING: Final = 256
CONCURRENT_REVIEWS: Final = 16
REVIEW_DEADLINE: Final = 10.0
"""Longest a request waits for its reviews, queueing for the API server included."""
K = TypeVar("K")
T = TypeVar("T")
Decision = tuple[bool, float]
"""``(allowed, expires)``."""


class _Identity:
    """A reviewed token: who it is (None: not accepted), its namespace (a ServiceAccount's;
    None for any other user), until when, and its decisions. The ``Caller`` of the
    ``Access`` protocol."""

    __slots__ = ("decisions", "expires", "namespace", "reason", "user")

    def __init__(self, user: UserInfo | None, expires: float, reason: str = "") -> None:
        self.user = user
        account = service_account(user.username) if user is not None else None
        self.namespace = account[0] if account is not None else None
        self.expires = expires
        self.reason = reason
        self.decisions: dict[tuple[str, str], Decision] = {}


class KubernetesAccess:
    """The ``Access`` of ``--auth kubernetes``. ``clock`` (monotonic) and ``wall_clock``
    (epoch seconds, to read a token's ``exp``) are injectable for tests."""

    open = False

    def __init__(self, reviews: ReviewClient, *, audiences: Sequence[str] = (DEFAULT_AUDIENCE,),
                 allow_ttl: float = ALLOW_TTL, refuse_ttl: float = REFUSE_TTL,
                 max_identities: int = MAX_IDENTITIES, max_refused: int = MAX_REFUSED,
                 max_pending: int = MAX_PENDING, concurrency: int = CONCURRENT_REVIEWS,
                 review_deadline: float = REVIEW_DEADLINE,
                 metrics: AccessMetrics | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.reviews = reviews
        self.audiences = tuple(audiences)
        self.allow_ttl = allow_ttl
        self.refuse_ttl = refuse_ttl
        self.max_identities = max_identities
        self.max_refused = max_refused
        self.max_pending = max_pending
        self.review_deadline = review_deadline
        self.metrics = metrics if metrics is not None else AccessMetrics("kubernetes")
        self._clock = clock
        self._wall_clock = wall_clock
        self._identities: OrderedDict[bytes, _Identity] = OrderedDict()
        self._refused: OrderedDict[bytes, _Identity] = OrderedDict()
        self._token_flights: dict[bytes, asyncio.Future[_Identity | ReviewFailed]] = {}
        self._access_flights: dict[tuple[_Identity, str, str],
                                   asyncio.Future[bool | ReviewFailed]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._failure_logged = -1e9

    # -- the Access protocol -----------------------------------------------------------------

    def identify(self, request: Request) -> Caller | None:
        identity = self._cached(digest(self._token(request)), self._clock())
        if identity is None:
            self.metrics.cache[(TOKEN, MISS)] += 1
            return None
        if identity.user is None:
            metrics = self.metrics
            metrics.cache[(TOKEN, HIT)] += 1
            metrics.authn[INVALID] += 1
            raise _not_accepted(identity)
        return identity  # counted by ``check`` (the hot path counts once, there)

    async def authenticate(self, request: Request) -> Caller:
        metrics = self.metrics
        token = self._token(request)
        key = digest(token)
        identity = self._cached(key, self._clock())
        if identity is None:
            found = await self._fly(self._token_flights, key,
                                    lambda: self._review_token(token, key))
            if isinstance(found, ReviewFailed):
                metrics.authn[UNAVAILABLE] += 1
                raise self._unavailable(found)
            identity = found
        if identity.user is None:
            metrics.authn[INVALID] += 1
            raise _not_accepted(identity)
        return identity  # counted by ``review``, which always follows

    def check(self, caller: Caller, namespace: str, policy: str) -> bool:
        identity = cast(_Identity, caller)  # what ``identify`` returned: a known user
        metrics = self.metrics
        now = self._clock()
        decision = identity.decisions.get((namespace, policy))
        if decision is not None and decision[0] and decision[1] > now:
            metrics.cached_allows += 1  # the hot path: one counter (see AccessMetrics)
            return True
        metrics.cache[(TOKEN, HIT)] += 1
        if decision is None or decision[1] <= now:
            metrics.cache[(ACCESS, MISS)] += 1
            return False
        metrics.cache[(ACCESS, HIT)] += 1
        metrics.authn[AUTHENTICATED] += 1
        metrics.authz[DENIED] += 1
        raise forbidden_by_rbac(cast(UserInfo, identity.user).username, namespace, policy)

    async def review(self, caller: Caller, namespace: str, policy: str) -> None:
        identity = cast(_Identity, caller)
        user = identity.user
        if user is None:  # not from identify or authenticate; refuse rather than guess
            raise _not_accepted(identity)
        metrics = self.metrics
        metrics.authn[AUTHENTICATED] += 1
        decision = identity.decisions.get((namespace, policy))
        if decision is not None and decision[1] > self._clock():
            allowed = decision[0]
        else:
            verdict = await self._fly(
                self._access_flights, (identity, namespace, policy),
                lambda: self._review_access(identity, user, namespace, policy))
            if isinstance(verdict, ReviewFailed):
                metrics.authz[UNAVAILABLE] += 1
                raise self._unavailable(verdict)
            allowed = verdict
        if not allowed:
            metrics.authz[DENIED] += 1
            raise forbidden_by_rbac(user.username, namespace, policy)
        metrics.authz[ALLOWED] += 1

    async def aclose(self) -> None:
        for token_flight in list(self._token_flights.values()):
            token_flight.cancel()
        for access_flight in list(self._access_flights.values()):
            access_flight.cancel()
        await self.reviews.aclose()

    # -- the caches --------------------------------------------------------------------------

    def _token(self, request: Request) -> bytes:
        try:
            return bearer(request)
        except ApiError as error:
            self.metrics.authn[MISSING if error.details.get("reason") == "missing_credential"
                               else INVALID] += 1
            raise

    def _cached(self, key: bytes, now: float) -> _Identity | None:
        identity = self._identities.get(key)
        if identity is not None:
            if identity.expires > now:
                self._identities.move_to_end(key)
                return identity
            del self._identities[key]
        refused = self._refused.get(key)
        if refused is not None:
            if refused.expires > now:
                return refused
            del self._refused[key]
        return None

    def _remember(self, key: bytes, identity: _Identity) -> None:
        cache, bound = ((self._identities, self.max_identities) if identity.user is not None
                        else (self._refused, self.max_refused))
        cache[key] = identity
        cache.move_to_end(key)
        while len(cache) > bound:
            cache.popitem(last=False)

    def _until(self, ttl: float, token_expires: float) -> float:
        return min(self._clock() + ttl, token_expires)

    # -- reviews -----------------------------------------------------------------------------

    async def _fly(self, flights: dict[K, asyncio.Future[T]], key: K,
                   start: Callable[[], Awaitable[T]]) -> T:
        """Await the one review in flight for ``key``, starting it if there is none. The
        review is shielded: a caller that leaves does not cancel it for the others."""
        flight = flights.get(key)
        if flight is None:
            if len(self._token_flights) + len(self._access_flights) >= self.max_pending:
                self.metrics.review("any", "overloaded")
                raise unavailable("too many callers are waiting for an access review; "
                                  "retry shortly")
            flight = asyncio.ensure_future(start())
            flights[key] = flight
            flight.add_done_callback(lambda _: flights.pop(key, None))
        return await asyncio.shield(flight)

    async def _bounded(self, call: Callable[[], Awaitable[T]]) -> T:
        """One review: waits for a free slot and the API server, within the deadline."""
        try:
            async with asyncio.timeout(self.review_deadline):
                async with self._slots:
                    return await call()
        except TimeoutError:
            raise ReviewFailed(f"no answer from the API server within "
                               f"{self.review_deadline:g}s") from None

    async def _review_token(self, token: bytes, key: bytes) -> _Identity | ReviewFailed:
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            identity = _Identity(None, self._clock() + self.refuse_ttl, "not a token")
            self._remember(key, identity)
            return identity
        try:
            verdict = await self._bounded(lambda: self.reviews.review_token(text,
                                                                            self.audiences))
        except ReviewFailed as error:
            self.metrics.review("TokenReview", "error")
            return error
        expires = self._token_expires(text)
        if verdict.user is None:
            self.metrics.review("TokenReview", "unauthenticated")
            identity = _Identity(None, self._until(self.refuse_ttl, expires), verdict.error)
        else:
            self.metrics.review("TokenReview", "authenticated")
            identity = _Identity(verdict.user, self._until(self.allow_ttl, expires))
        self._remember(key, identity)
        return identity

    async def _review_access(self, identity: _Identity, user: UserInfo, namespace: str,
                             policy: str) -> bool | ReviewFailed:
        try:
            allowed = await self._bounded(lambda: self.reviews.may_use(user, namespace, policy))
        except ReviewFailed as error:
            self.metrics.review("SubjectAccessReview", "error")
            return error
        self.metrics.review("SubjectAccessReview", "allowed" if allowed else "denied")
        ttl = self.allow_ttl if allowed else self.refuse_ttl
        decisions = identity.decisions
        decisions[(namespace, policy)] = (allowed, min(self._clock() + ttl, identity.expires))
        while len(decisions) > MAX_DECISIONS:
            del decisions[next(iter(decisions))]
        return allowed

    def _token_expires(self, token: str) -> float:
        """The token's ``exp`` on the monotonic clock; +inf when it carries none."""
        exp = token_exp(token)
        if exp is None:
            return float("inf")
        return self._clock() + (exp - self._wall_clock())

    def _unavailable(self, failure: ReviewFailed) -> ApiError:
        now = self._clock()
        if now - self._failure_logged > 30.0:  # one line per 30 s, not one per request
            self._failure_logged = now
            log.warning("access reviews are failing (%s): unknown callers get 503, cached "
                        "ones go on until their entries expire", failure)
        return unavailable(f"the router cannot check credentials now: {failure}")



def _not_accepted(identity: _Identity) -> ApiError:
    reason = identity.reason or "not accepted"
    return unauthenticated(f"the token was not accepted by the Kubernetes API server "
                           f"({reason}); send a ServiceAccount token for this router's "
                           "audience", invalid=True)


def token_exp(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it: the API server has verified
    the token; this only keeps a cache entry from outliving it."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
