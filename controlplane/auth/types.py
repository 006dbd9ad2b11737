"""Who is asking and what they ask for: the two values authentication and authorization exchange."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALL_AUTHENTICATED",
    "ALL_UNAUTHENTICATED",
    "MASTERS",
    "NODES_GROUP",
    "Decision",
    "RequestAttributes",
    "UserInfo",
]

MASTERS = "system:masters"
NODES_GROUP = "system:nodes"
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class RequestAttributes:
    """What RBAC decides on. `resource_request` False means a non-resource URL like /healthz, where only
    `path` and `verb` (the lower-cased HTTP method, e.g. "get") count."""

    user: UserInfo
    verb: str
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = "/"
    resource_request: bool = True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
