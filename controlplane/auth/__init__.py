"""Authentication (who), request attributes (what) and RBAC authorization (may they).

Server wiring, per request:

    user = authenticator.authenticate(peercert=transport.get_extra_info("peercert"),
                                      authorization=request.headers.get("Authorization"))
    if user is None: 401
    attrs = request_attributes(request.method, request.path, request.query, user)
    if not authorizer.authorize(attrs).allowed: 403 with forbidden_message(attrs)

`Authenticator(signer=TokenSigner(key), source=cache)` where `cache.get(resource, namespace, name)`
returns a stored object or None; `Authorizer(rbac_source)` where the source yields Roles, ClusterRoles and
bindings. `default_objects()` lists the RBAC objects to create at first start.
"""

from controlplane.auth.authn import Authenticator, CredentialSource, load_token_file, user_from_peercert
from controlplane.auth.bootstrap import (
    AUTOUPDATE,
    CLUSTER_INFO,
    NODE_BOOTSTRAP_GROUP,
    NODE_CERTIFICATE_PATH,
    default_objects,
)
from controlplane.auth.errors import AuthError, InvalidToken
from controlplane.auth.rbac import Authorizer, RBACSource, forbidden_message
from controlplane.auth.request_info import request_attributes
from controlplane.auth.tokens import (
    BootstrapToken,
    ServiceAccountClaims,
    TokenSigner,
    bootstrap_token_from_secret,
    detached_signature,
    new_bootstrap_token,
    service_account_username,
    verify_detached_signature,
)
from controlplane.auth.types import Decision, RequestAttributes, UserInfo

__all__ = [
    "AUTOUPDATE",
    "CLUSTER_INFO",
    "NODE_BOOTSTRAP_GROUP",
    "NODE_CERTIFICATE_PATH",
    "AuthError",
    "Authenticator",
    "Authorizer",
    "BootstrapToken",
    "CredentialSource",
    "Decision",
    "InvalidToken",
    "RBACSource",
    "RequestAttributes",
    "ServiceAccountClaims",
    "TokenSigner",
    "UserInfo",
    "bootstrap_token_from_secret",
    "default_objects",
    "detached_signature",
    "forbidden_message",
    "load_token_file",
    "new_bootstrap_token",
    "request_attributes",
    "service_account_username",
    "user_from_peercert",
    "verify_detached_signature",
]
