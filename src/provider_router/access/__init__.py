"""Who may use a policy: the implementations of the route API's ``Access`` seam.

* ``KubernetesAccess`` (``--auth kubernetes``): ServiceAccount tokens checked with a
  TokenReview, permission to ``use`` the RoutingPolicy checked with a SubjectAccessReview, both
  cached briefly under the token's SHA-256 (``ReviewClient`` makes the two calls);
* ``KeysAccess`` (``--auth keys``): API keys from labelled Secrets among the manifests of
  standalone mode, each allowed a list of policies;
* ``OpenAccess`` (``--auth none``), re-exported from the service.

``AuthMode`` and the ``*_auth_mode`` functions decide which one a command runs with, and
``access_for`` builds it; ``AccessMetrics`` counts outcomes for ``/metrics``. No credential is
ever logged, answered or counted by value.
"""

from provider_router.access._build import access_for
from provider_router.access._errors import USER_ROLE, grant_command
from provider_router.access._keys import (
    KEYS_LABEL,
    POLICIES_ANNOTATION,
    ApiKey,
    KeysAccess,
    keys_from_secrets,
    parse_grants,
)
from provider_router.access._kubernetes import (
    ALLOW_TTL,
    DEFAULT_AUDIENCE,
    REFUSE_TTL,
    KubernetesAccess,
    token_exp,
)
from provider_router.access._metrics import AccessMetrics
from provider_router.access._mode import (
    AuthMode,
    operator_auth_mode,
    serve_auth_mode,
    warn_if_open,
)
from provider_router.access._reviews import ReviewClient, ReviewFailed, TokenVerdict, UserInfo
from provider_router.service import Access, OpenAccess

__all__ = [
    "ALLOW_TTL",
    "DEFAULT_AUDIENCE",
    "KEYS_LABEL",
    "POLICIES_ANNOTATION",
    "REFUSE_TTL",
    "USER_ROLE",
    "Access",
    "AccessMetrics",
    "ApiKey",
    "AuthMode",
    "KeysAccess",
    "KubernetesAccess",
    "OpenAccess",
    "ReviewClient",
    "ReviewFailed",
    "TokenVerdict",
    "UserInfo",
    "access_for",
    "grant_command",
    "keys_from_secrets",
    "operator_auth_mode",
    "parse_grants",
    "serve_auth_mode",
    "token_exp",
    "warn_if_open",
]
