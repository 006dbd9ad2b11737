"""Review APIs: create-only, never stored — the server answers a question about authentication or
authorization. `kubectl auth can-i` uses SelfSubjectAccessReview, `kubectl auth whoami`
SelfSubjectReview; node agents and webhooks use TokenReview and SubjectAccessReview."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controlplane.apiserver.errors import BadRequest
from controlplane.auth import Decision, RequestAttributes, UserInfo
from controlplane.resources import Resource

Obj = dict[str, Any]


def _review(group: str, kind: str, plural: str) -> Resource:
    return Resource(group, "v1", kind, plural, False, verbs=("create",))


SELF_SUBJECT_ACCESS_REVIEWS = _review("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews")
SUBJECT_ACCESS_REVIEWS = _review("authorization.k8s.io", "SubjectAccessReview", "subjectaccessreviews")
SELF_SUBJECT_REVIEWS = _review("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews")
TOKEN_REVIEWS = _review("authentication.k8s.io", "TokenReview", "tokenreviews")
REVIEWS: tuple[Resource, ...] = (
    SELF_SUBJECT_ACCESS_REVIEWS,
    SUBJECT_ACCESS_REVIEWS,
    SELF_SUBJECT_REVIEWS,
    TOKEN_REVIEWS,
)


def lookup_review(group: str, version: str, plural: str) -> Resource | None:
    return next((r for r in REVIEWS if (r.group, r.version, r.plural) == (group, version, plural)), None)


def user_json(user: UserInfo) -> Obj:
    out: Obj = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        out["uid"] = user.uid
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


def _attributes(spec: Obj, user: UserInfo) -> RequestAttributes:
    res = spec.get("resourceAttributes")
    if isinstance(res, dict):
        return RequestAttributes(
            user=user,
            verb=str(res.get("verb", "")),
            api_group=str(res.get("group", "")),
            api_version=str(res.get("version", "")),
            resource=str(res.get("resource", "")),
            subresource=str(res.get("subresource", "")),
            namespace=str(res.get("namespace", "")),
            name=str(res.get("name", "")),
        )
    non = spec.get("nonResourceAttributes")
    if isinstance(non, dict):
        return RequestAttributes(
            user=user, verb=str(non.get("verb", "")), path=str(non.get("path", "/")), resource_request=False
        )
    raise BadRequest("spec.resourceAttributes or spec.nonResourceAttributes is required")


def answer(
    res: Resource,
    body: Obj,
    requester: UserInfo,
    *,
    decide: Callable[[RequestAttributes], Decision],
    authenticate_token: Callable[[str], UserInfo | None],
) -> Obj:
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise BadRequest("spec must be an object")
    out: Obj = {"kind": res.kind, "apiVersion": res.group_version, "metadata": {}, "spec": spec}
    if res is SELF_SUBJECT_REVIEWS:
        out["status"] = {"userInfo": user_json(requester)}
    elif res is TOKEN_REVIEWS:
        user = authenticate_token(str(spec.get("token", "")))
        out["spec"] = {k: v for k, v in spec.items() if k != "token"}
        out["status"] = {"authenticated": True, "user": user_json(user)} if user else {"authenticated": False}
    else:
        subject = requester
        if res is SUBJECT_ACCESS_REVIEWS:
            extra = {k: tuple(v) for k, v in (spec.get("extra") or {}).items()}
            subject = UserInfo(
                str(spec.get("user", "")), tuple(spec.get("groups") or ()), str(spec.get("uid", "")), extra
            )
        decision = decide(_attributes(spec, subject))
        out["status"] = {"allowed": decision.allowed, **({"reason": decision.reason} if decision.reason else {})}
    return out
