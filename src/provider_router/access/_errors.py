"""The three refusals of an access check, worded so that the caller knows what to do.

401 says the credential is missing or not accepted (with ``WWW-Authenticate``, as RFC 6750
asks); 403 names the policy, the permission that is missing and how to grant it; 503 says the
decision could not be made now, which is never turned into a yes. None of them ever echoes the
credential: an answer may end up in a log the caller does not own.
"""

from __future__ import annotations

from typing import Final

from provider_router.api import GROUP
from provider_router.service import ApiError

REALM: Final = "provider-router"
VERB: Final = "use"
RESOURCE: Final = "routingpolicies"
USER_ROLE: Final = "provider-router-user"
"""The ClusterRole the chart ships for teams to bind."""

SERVICE_ACCOUNT_PREFIX: Final = "system:serviceaccount:"


def unauthenticated(message: str, *, invalid: bool) -> ApiError:
    """401: no credential (``invalid=False``) or one that was not accepted."""
    challenge = f'Bearer realm="{REALM}"'
    if invalid:
        challenge += ', error="invalid_token"'
    return ApiError(401, "unauthenticated", message,
                    {"reason": "invalid_credential" if invalid else "missing_credential"},
                    headers=((b"www-authenticate", challenge.encode()),))


def permission(namespace: str, policy: str) -> dict[str, str]:
    return {"verb": VERB, "group": GROUP, "resource": RESOURCE, "namespace": namespace,
            "name": policy}


def service_account(user: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of a ServiceAccount's username (``system:serviceaccount:NS:NAME``);
    None for any other user, which has no namespace of its own."""
    if not user.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, colon, name = user.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    if not (namespace and colon and name) or ":" in name:
        return None
    return namespace, name


def grant_command(user: str, namespace: str) -> str:
    """The ``kubectl create rolebinding`` that lets ``user`` use the policies of
    ``namespace``."""
    account = service_account(user)
    if account is not None:
        subject = f"--serviceaccount={account[0]}:{account[1]}"
        binding = f"{USER_ROLE}-{account[1]}"
    else:
        subject = f"--user={user}"
        binding = USER_ROLE
    return (f"kubectl create rolebinding {binding} --clusterrole={USER_ROLE} {subject} "
            f"-n {namespace}")


def forbidden_by_rbac(user: str, namespace: str, policy: str) -> ApiError:
    """403 for a Kubernetes identity, with the RoleBinding that would allow it."""
    command = grant_command(user, namespace)
    return ApiError(
        403, "forbidden",
        f"{user} may not use RoutingPolicy {namespace}/{policy}: it needs '{VERB}' on "
        f"{RESOURCE}.{GROUP} in namespace {namespace}; grant it with: {command}",
        {"namespace": namespace, "policy": policy, "user": user,
         "permission": permission(namespace, policy), "grant": command})


def forbidden_by_key(key_name: str, namespace: str, policy: str, annotation: str) -> ApiError:
    """403 for an API key, naming the annotation that lists its policies."""
    return ApiError(
        403, "forbidden",
        f"API key {key_name} may not use RoutingPolicy {namespace}/{policy}: add "
        f"{namespace}/{policy} to the annotation {annotation} of its Secret",
        {"namespace": namespace, "policy": policy, "key": key_name,
         "permission": permission(namespace, policy), "annotation": annotation})


def unavailable(message: str) -> ApiError:
    """503: the decision cannot be made now. Retrying soon is the right move."""
    return ApiError(503, "auth_unavailable", message, {"reason": "review_failed"},
                    headers=((b"retry-after", b"1"),))
