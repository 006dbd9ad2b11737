"""Subresources: status/finalize (write only one part of an object), scale (the autoscaling/v1
Scale view of a workload's replicas), binding (the scheduler's write of spec.nodeName), eviction,
and log/exec/attach/portforward (connections proxied to the node agent)."""

from __future__ import annotations

import copy
import datetime
import time
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from controlplane.apiserver.errors import BadRequest, Cause, Conflict, MethodNotAllowed, NotFound, conflict, invalid
from controlplane.apiserver.registry import DeleteOptions, now_rfc3339
from controlplane.apiserver.security import USER
from controlplane.auth import ServiceAccountClaims
from controlplane.resources import PODS, Resource
from controlplane.storage import RevisionConflict

if TYPE_CHECKING:
    from controlplane.apiserver.handlers import ApiHandlers, Target

Obj = dict[str, Any]


class NodeConnector(Protocol):
    """Streams a pod's logs or an exec/attach/portforward session from the node running it."""

    async def connect(self, request: web.Request, pod: Obj, subresource: str) -> web.StreamResponse: ...


async def handle(h: ApiHandlers, request: web.Request, t: Target) -> web.StreamResponse:
    from controlplane.apiserver.handlers import json_response

    sub = t.subresource
    if sub == "binding-collection":
        if t.verb != "create":
            raise MethodNotAllowed("only POST is allowed on bindings")
        body = await h.read_dict(request)
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise BadRequest("a Binding must name the pod in metadata.name")
        return json_response(await bind(h, request, t.namespace, str(name), body), 201)
    if sub in ("status", "finalize", "ephemeralcontainers"):
        return await _status_like(h, request, t)
    if sub == "scale":
        return await _scale(h, request, t)
    if sub == "binding":
        if t.verb != "create":
            raise MethodNotAllowed("only POST is allowed on pods/binding")
        return json_response(await bind(h, request, t.namespace, t.name, await h.read_dict(request)), 201)
    if sub == "eviction":
        if t.verb != "create":
            raise MethodNotAllowed("only POST is allowed on pods/eviction")
        return await _evict(h, request, t)
    if sub == "token":
        if t.verb != "create":
            raise MethodNotAllowed("only POST is allowed on serviceaccounts/token")
        return json_response(await _token(h, request, t), 201)
    if sub in ("log", "exec", "attach", "portforward"):
        pod = h.registry.get_entry(PODS, t.namespace, t.name).obj
        if h.connect is None:
            raise NotFound(f"{sub} is not available: no node connector")
        return await h.connect.connect(request, pod, sub)
    raise NotFound(f"the server does not serve {t.res.plural}/{sub}")


async def _status_like(h: ApiHandlers, request: web.Request, t: Target) -> web.StreamResponse:
    from controlplane.apiserver.handlers import json_response, raw_json_response, with_warnings

    reg = h.registry
    if t.verb == "get":
        return raw_json_response(reg.get_entry(t.res, t.namespace, t.name).raw)
    if t.verb == "update":
        obj = await h.read_dict(request)
        h.check_kind(t.res, obj)
        fields = h.field_check(request)
        out = await reg.update(
            t.res,
            t.namespace,
            t.name,
            obj,
            subresource=t.subresource,
            user=request[USER],
            dry_run=h.dry_run(request),
            fields=fields,
        )
        return with_warnings(json_response(out), fields)
    if t.verb == "patch":
        apply = await h.patch_function(request, t.res)
        fields = h.field_check(request)
        out = await reg.patch(
            t.res,
            t.namespace,
            t.name,
            apply,
            subresource=t.subresource,
            user=request[USER],
            dry_run=h.dry_run(request),
            fields=fields,
        )
        return with_warnings(json_response(out), fields)
    raise MethodNotAllowed(f"{request.method} is not allowed on {t.res.plural}/{t.subresource}")


# -- scale ----------------------------------------------------------------------------------------


def selector_string(obj: Obj) -> str:
    """The label selector of a workload as a string (Scale.status.selector)."""
    sel = (obj.get("spec") or {}).get("selector") or {}
    if not isinstance(sel, dict):
        return ""
    if "matchLabels" not in sel and "matchExpressions" not in sel:  # ReplicationController: a plain map
        return ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def to_scale(obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": selector_string(obj)},
    }


async def _scale(h: ApiHandlers, request: web.Request, t: Target) -> web.StreamResponse:
    from controlplane.apiserver.handlers import json_response

    reg = h.registry
    if t.verb == "get":
        return json_response(to_scale(reg.get_entry(t.res, t.namespace, t.name).obj))
    if t.verb == "update":
        body = await h.read_dict(request)
        replicas_fn = _replicas_from_scale(t.res, t.name, lambda _: body)
    elif t.verb == "patch":
        apply = await h.patch_function(request, t.res)
        replicas_fn = _replicas_from_scale(t.res, t.name, apply)
    else:
        raise MethodNotAllowed(f"{request.method} is not allowed on {t.res.plural}/scale")

    def set_replicas(obj: Obj) -> Obj:
        wanted = replicas_fn(obj)
        obj.setdefault("spec", {})["replicas"] = wanted
        return obj

    out = await reg.patch(t.res, t.namespace, t.name, set_replicas, user=request[USER], dry_run=h.dry_run(request))
    return json_response(to_scale(out))


def _replicas_from_scale(res: Resource, name: str, apply: Any) -> Any:
    def replicas(obj: Obj) -> int:
        scale = to_scale(obj)
        new = apply(copy.deepcopy(scale))
        if not isinstance(new, dict):
            raise BadRequest("a Scale must be a JSON object")
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv not in (None, "", scale["metadata"].get("resourceVersion")):
            raise conflict(res, name, "the object has been modified; please apply your changes to the latest version")
        value = (new.get("spec") or {}).get("replicas")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise invalid(res, name, [Cause("spec.replicas", f"Invalid value: {value!r}: must be >= 0")])
        return value

    return replicas


# -- binding, eviction ----------------------------------------------------------------------------


_BIND_RETRIES = 10


async def bind(h: ApiHandlers, request: web.Request, namespace: str | None, name: str, body: Obj) -> Obj:
    target = body.get("target") or {}
    node = target.get("name") if isinstance(target, dict) else None
    if not node:
        raise invalid(PODS, name, [Cause("target.name", "Required value")])
    if target.get("kind") not in (None, "", "Node"):
        raise invalid(PODS, name, [Cause("target.kind", "must be empty or Node")])

    def assign(pod: Obj) -> Obj:
        spec = pod.setdefault("spec", {})
        if pod["metadata"].get("deletionTimestamp"):
            raise conflict(PODS, name, "pod is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise conflict(PODS, name, f"pod {name} is already assigned to node {spec['nodeName']!r}")
        spec["nodeName"] = node
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()})
        pod.setdefault("status", {})["conditions"] = conditions
        return pod

    reg = h.registry
    for attempt in range(_BIND_RETRIES):  # a status write racing the binding is not a reason to fail it
        entry = reg.get_entry(PODS, namespace, name)
        pod = assign(copy.deepcopy(entry.obj))
        try:
            await reg.replace_unchecked(PODS, namespace, name, pod, base=entry, user=request[USER])
            break
        except Conflict as err:
            if not isinstance(err.__cause__, RevisionConflict) or attempt == _BIND_RETRIES - 1:
                raise
            await reg.cache.wait_for(err.__cause__.actual, timeout=1.0)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def _evict(h: ApiHandlers, request: web.Request, t: Target) -> web.StreamResponse:
    from controlplane.apiserver.handlers import json_response

    body = await h.read_dict(request)
    opts = DeleteOptions(dry_run=h.dry_run(request))
    delete_options = body.get("deleteOptions")
    if isinstance(delete_options, dict):
        h.merge_delete_options(opts, delete_options)
    await h.registry.delete(PODS, t.namespace, t.name, opts, user=request[USER])
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)


# -- serviceaccounts/token ------------------------------------------------------------------------

_MIN_TOKEN_SECONDS = 600
_DEFAULT_TOKEN_SECONDS = 3600


async def _token(h: ApiHandlers, request: web.Request, t: Target) -> Obj:
    """TokenRequest (authentication.k8s.io/v1): a signed token for the ServiceAccount, optionally bound
    to a pod (it dies with the pod's uid... and with the ServiceAccount's)."""
    if h.issue_token is None:
        raise NotFound("token issuing is not configured")
    body = await h.read_dict(request)
    sa = h.registry.get_entry(t.res, t.namespace, t.name).obj
    spec = body.get("spec") or {}
    seconds = spec.get("expirationSeconds") or _DEFAULT_TOKEN_SECONDS
    if not isinstance(seconds, int) or seconds < _MIN_TOKEN_SECONDS:
        raise invalid(
            t.res,
            t.name,
            [Cause("spec.expirationSeconds", f"may not specify a duration less than {_MIN_TOKEN_SECONDS} seconds")],
        )
    bound = spec.get("boundObjectRef") or {}
    pod_name = pod_uid = ""
    if bound:
        if bound.get("kind") != "Pod":
            raise invalid(t.res, t.name, [Cause("spec.boundObjectRef.kind", "only Pod is supported")])
        pod = h.registry.get_entry(PODS, t.namespace, str(bound.get("name"))).obj
        if bound.get("uid") and bound["uid"] != pod["metadata"]["uid"]:
            raise conflict(PODS, str(bound.get("name")), "the UID in the bound object reference does not match")
        pod_name, pod_uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    expires = int(time.time()) + seconds
    token = h.issue_token(
        ServiceAccountClaims(
            namespace=str(t.namespace),
            name=t.name,
            uid=sa["metadata"]["uid"],
            expires=expires,
            pod_name=pod_name,
            pod_uid=pod_uid,
            audiences=tuple(spec.get("audiences") or ()),
        )
    )
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": t.name, "namespace": t.namespace, "creationTimestamp": now_rfc3339()},
        "spec": {**spec, "expirationSeconds": seconds},
        "status": {
            "token": token,
            "expirationTimestamp": datetime.datetime.fromtimestamp(expires, datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        },
    }
