"""The HTTP edge of the API server: authentication and authorization, routing, request decoding,
content negotiation and `metav1.Status` errors. REST semantics live in registry.py, watch streams in
watch.py, subresources in subresources.py; this module only translates."""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jsonpatch
import orjson
import yaml
from aiohttp import web

from controlplane.apiserver import discovery, protobuf, subresources, watch
from controlplane.apiserver import metrics as server_metrics
from controlplane.apiserver.apply import apply as server_side_apply
from controlplane.apiserver.cache import Entry
from controlplane.apiserver.errors import (
    ApiError,
    BadRequest,
    MethodNotAllowed,
    NotFound,
    TooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from controlplane.apiserver.keys import collection_prefix
from controlplane.apiserver.nodecerts import NodeCertificates
from controlplane.apiserver.registry import DeleteOptions, FieldCheck, Registry
from controlplane.apiserver.reviews import answer, lookup_review
from controlplane.apiserver.security import USER, Security, is_public
from controlplane.apiserver.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from controlplane.apiserver.tables import TableMaker, wants_table
from controlplane.auth import NODE_CERTIFICATE_PATH, ServiceAccountClaims
from controlplane.auth.request_info import request_attributes
from controlplane.auth.types import RequestAttributes, UserInfo
from controlplane.patch import PatchError, json_merge, strategic_merge
from controlplane.resources import NAMESPACES, PODS, Resource, lookup

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # Kubernetes' request size limit (3 MiB)
JSON = "application/json"

ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))
SLOW_REQUEST = 5.0  # seconds; a short request slower than this is logged (a loaded loop, a stuck store)
_STREAMS = frozenset({"log", "exec", "attach", "portforward", "proxy"})  # long-running subresources
ATTRS = web.RequestKey("attrs", RequestAttributes)  # what a request asks for, once parsed (for metrics)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


def raw_json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON)


def with_warnings(resp: web.Response, fields: FieldCheck) -> web.Response:
    """RFC 7234 warning headers, code 299, as Kubernetes sends them (kubectl prints each)."""
    for text in dict.fromkeys(fields.warnings):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        resp.headers.add("Warning", f'299 - "{escaped}"')
    return resp


def status_response(err: ApiError) -> web.Response:
    resp = json_response(err.status(), err.code)
    if err.retry_after is not None:
        resp.headers["Retry-After"] = str(err.retry_after)
    return resp


def _int_param(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as err:
        raise BadRequest(f"invalid {name}: {value!r}") from err


class NoAliasLoader(yaml.SafeLoader):
    """YAML aliases can make a small body expand exponentially once serialized ("billion laughs");
    Kubernetes manifests do not need them."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases are not allowed in request bodies")
        return super().compose_node(parent, index)


@dataclass(frozen=True)
class Target:
    res: Resource
    namespace: str | None
    name: str
    subresource: str
    verb: str


class ApiHandlers:
    def __init__(
        self,
        registry: Registry,
        *,
        server_address: str,
        tables: TableMaker,
        security: Security | None = None,
        connect: subresources.NodeConnector | None = None,
        issue_token: Callable[[ServiceAccountClaims], str] | None = None,
        node_certificates: NodeCertificates | None = None,
    ) -> None:
        self.registry = registry
        self.server_address = server_address
        self.tables = tables
        self.security = security
        self.connect = connect
        self.issue_token = issue_token
        self.node_certificates = node_certificates
        self.ready = False
        self.requests = server_metrics.RequestCounter()
        self._stopping = asyncio.Event()

    def stop_watches(self) -> None:
        self._stopping.set()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.monotonic()
        resp = await self._answer(request, handler)
        seconds: float | None = time.monotonic() - started
        attrs = request.get(ATTRS)
        if attrs is None:
            verb, resource = request.method, ""
        else:
            verb, resource = attrs.verb, attrs.resource
            if attrs.subresource:
                resource += f"/{attrs.subresource}"
            if verb == "watch" or attrs.subresource in _STREAMS:
                seconds = None
        self.requests.observe(verb, resource, resp.status, seconds)
        if seconds is not None and seconds > SLOW_REQUEST:
            log.warning("slow request: %s %s took %.1fs (%d)", request.method, request.path_qs, seconds, resp.status)
        return resp

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The handler's response, with every error turned into a `metav1.Status` response."""
        try:
            return await handler(request)
        except ApiError as err:
            return status_response(err)
        except web.HTTPRequestEntityTooLarge:
            return status_response(TooLarge(f"the request body is larger than the limit of {MAX_BODY} bytes"))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as err:
            log.exception("internal error serving %s %s", request.method, request.path)
            return json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"internal error: {type(err).__name__}",
                    "reason": "InternalError",
                    "code": 500,
                },
                500,
            )

    # -- routing ---------------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        user = ANONYMOUS
        if self.security is not None:
            found = self.security.authenticate(request)
            if found is not None:
                user = await self._impersonate(request, found)
            elif request.headers.get("Authorization") or not is_public(request.path):
                raise Unauthorized("Unauthorized")
        request[USER] = user
        attrs = request_attributes(request.method, request.path, request.query, user)
        request[ATTRS] = attrs
        if self.security is not None:  # anonymous requests too: RBAC says what of the public paths they get
            await self.security.authorize(attrs)
        if not attrs.resource_request:
            return await self._non_resource(request)
        review = lookup_review(attrs.api_group, attrs.api_version, attrs.resource)
        if review is not None:
            return await self._review(request, review, attrs)
        target = self._target(attrs)
        return await self._resource(request, target)

    async def _impersonate(self, request: web.Request, user: UserInfo) -> UserInfo:
        """`Impersonate-User`/`Impersonate-Group` headers (kubectl --as/--as-group): allowed when RBAC
        grants the real user the `impersonate` verb on those users and groups."""
        name = request.headers.get("Impersonate-User")
        groups = request.headers.getall("Impersonate-Group", [])
        if not name:
            if groups:
                raise BadRequest("Impersonate-Group requires Impersonate-User")
            return user
        assert self.security is not None
        checks = [("users", name), *(("groups", g) for g in groups)]
        for resource, target in checks:
            attrs = RequestAttributes(user=user, verb="impersonate", resource=resource, name=target)
            await self.security.authorize(attrs)
        return UserInfo(name, (*groups, "system:authenticated"))

    async def _non_resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            if path.startswith("/readyz") and not self.ready:
                return web.Response(text="[-]informer-sync failed: not ready\nreadyz check failed", status=500)
            return web.Response(text="ok")
        if path == NODE_CERTIFICATE_PATH and self.node_certificates is not None:
            if request.method != "POST":
                raise MethodNotAllowed(f"only POST is allowed on {path}")
            return json_response(self.node_certificates.issue(request[USER], await self.read_dict(request)), 201)
        if path == "/metrics":
            body = server_metrics.render(self.requests).encode()
            return web.Response(body=body, headers={"Content-Type": server_metrics.CONTENT_TYPE})
        if path == "/version":
            return json_response(discovery.version_info())
        if path in ("/api", "/apis") and discovery.wants_aggregated(request.headers.get("Accept", "")):
            aggregated = discovery.aggregated_discovery(core=path == "/api")
            headers = {"Content-Type": discovery.AGGREGATED_CONTENT_TYPE}
            return web.Response(body=orjson.dumps(aggregated), headers=headers)
        if path == "/api":
            return json_response(discovery.api_versions(self.server_address))
        if path == "/apis":
            return json_response(discovery.api_group_list())
        parts = path.strip("/").split("/")
        doc: dict[str, Any] | None
        if parts[0] == "api" and len(parts) == 2:
            doc = discovery.api_resource_list(parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            doc = discovery.api_group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = discovery.api_resource_list(f"{parts[1]}/{parts[2]}")
        elif path == "/openapi/v3":  # the first one builds every schema (~1 s): off the event loop
            doc = await asyncio.to_thread(discovery.openapi_v3_root)
        elif parts[:2] == ["openapi", "v3"] and len(parts) > 3:
            gv = parts[3] if parts[2] == "api" else "/".join(parts[3:5])
            doc = await asyncio.to_thread(discovery.openapi_v3_doc, gv)
        else:
            doc = None
        if doc is None:
            raise NotFound(f"the server could not find the requested resource ({request.method} {path})")
        return json_response(doc)

    async def _review(self, request: web.Request, res: Resource, attrs: RequestAttributes) -> web.StreamResponse:
        if attrs.verb != "create" or attrs.name:
            raise MethodNotAllowed(f"only POST is allowed on {res.plural}")
        if self.security is None:
            raise NotFound(f"{res.plural} need authentication and authorization to be configured")
        body = await self.read_dict(request)
        self.check_kind(res, body)
        out = answer(
            res,
            body,
            request[USER],
            decide=self.security.decide,
            authenticate_token=self.security.authenticate_token,
        )
        return json_response(out, 201)

    def _target(self, attrs: RequestAttributes) -> Target:
        res = lookup(attrs.api_group, attrs.api_version, attrs.resource)
        if attrs.resource == "bindings" and attrs.api_group == "" and attrs.namespace:
            return Target(PODS, attrs.namespace, attrs.name, "binding-collection", attrs.verb)
        if res is None:
            raise NotFound(f"the server could not find the requested resource ({attrs.path})")
        namespace = attrs.namespace or None if res.namespaced else None
        if res is NAMESPACES:
            namespace = None
        if attrs.subresource and attrs.subresource not in res.subresources:
            raise NotFound(f"the server could not find the requested resource ({attrs.path})")
        return Target(res, namespace, attrs.name, attrs.subresource, attrs.verb)

    async def _resource(self, request: web.Request, t: Target) -> web.StreamResponse:
        if t.subresource:
            return await subresources.handle(self, request, t)
        verb = t.verb
        if verb == "get":
            return self._get(request, t)
        if verb == "list":
            return self._list(request, t)
        if verb == "watch":
            return await self._watch(request, t)
        if verb == "create":
            if t.name:
                raise MethodNotAllowed("POST is not allowed on a named object")
            return await self._create(request, t)
        if verb == "update":
            return await self._update(request, t)
        if verb == "patch":
            return await self._patch(request, t)
        if verb == "delete":
            return await self._delete(request, t)
        if verb == "deletecollection":
            return await self._delete_collection(request, t)
        raise MethodNotAllowed(f"{request.method} is not supported")

    # -- bodies ----------------------------------------------------------------------------------

    async def read_object(self, request: web.Request, *, allow_yaml: bool = True) -> Any:
        body = await request.read()
        ctype = request.content_type
        if not body:
            raise BadRequest("the request body is empty")
        try:
            if ctype == protobuf.CONTENT_TYPE:
                return protobuf.decode(body)
            if ctype in ("application/yaml", "application/apply-patch+yaml") and allow_yaml:
                return yaml.load(body, Loader=NoAliasLoader)
            if ctype in ("", "application/json", "application/octet-stream", "text/plain") or ctype.endswith("+json"):
                return orjson.loads(body)
        except protobuf.UnsupportedKind as err:
            raise UnsupportedMediaType(str(err)) from err
        except protobuf.ProtobufError as err:
            raise BadRequest(f"the request body is not valid protobuf: {err}") from err
        except (orjson.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
            raise BadRequest(f"the request body is not valid {'YAML' if 'yaml' in ctype else 'JSON'}: {err}") from err
        raise UnsupportedMediaType(f"the body of the request was in an unknown format: {ctype}")

    async def read_dict(self, request: web.Request) -> dict[str, Any]:
        obj = await self.read_object(request)
        if not isinstance(obj, dict):
            raise BadRequest("the request body must be a JSON object")
        return obj

    def check_kind(self, res: Resource, obj: dict[str, Any]) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind not in (None, res.kind) or api_version not in (None, res.group_version):
            raise BadRequest(
                f"the API version in the data ({api_version}) and kind ({kind}) do not match the "
                f"resource {res.group_version}, Kind={res.kind}"
            )

    # -- reads -----------------------------------------------------------------------------------

    def _get(self, request: web.Request, t: Target) -> web.StreamResponse:
        entry = self.registry.get_entry(t.res, t.namespace, t.name)
        if wants_table(request):
            return json_response(self.tables.table(t.res, [entry.obj], request, str(entry.revision)))
        return raw_json_response(entry.raw)

    def _predicate(self, request: web.Request) -> Callable[[dict[str, Any]], bool] | None:
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"))
        if not labels and not fields:
            return None

        def match(obj: dict[str, Any]) -> bool:
            return labels_match(labels, obj.get("metadata", {}).get("labels")) and fields_match(fields, obj)

        return match

    def _list(self, request: web.Request, t: Target) -> web.StreamResponse:
        match = self._predicate(request)
        start_after = ""
        token = request.query.get("continue")
        if token:
            try:
                start_after = orjson.loads(base64.urlsafe_b64decode(token.encode()))["start"]
            except (ValueError, KeyError, TypeError) as err:
                raise BadRequest("invalid continue token") from err
        limit = _int_param(request.query, "limit") or 0

        def pred(e: Entry) -> bool:
            return e.key > start_after and (match is None or match(e.obj))

        rev, entries = self.registry.list_entries(t.res, t.namespace, pred if (match or start_after) else None)
        meta: dict[str, Any] = {"resourceVersion": str(rev)}
        if limit and len(entries) > limit:
            meta["remainingItemCount"] = len(entries) - limit
            entries = entries[:limit]
            meta["continue"] = base64.urlsafe_b64encode(orjson.dumps({"start": entries[-1].key, "rv": rev})).decode()
        if wants_table(request):
            table = self.tables.table(t.res, [e.obj for e in entries], request, str(rev))
            table["metadata"].update(meta)
            return json_response(table)
        head = orjson.dumps({"kind": t.res.list_kind, "apiVersion": t.res.group_version, "metadata": meta})
        body = head[:-1] + b',"items":[' + b",".join(e.raw for e in entries) + b"]}"
        return raw_json_response(body)

    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        match = self._predicate(request)
        if t.name:  # a watch on one object (legacy /watch/…/name) is a field selector on its name
            name_match = parse_field_selector(f"metadata.name={t.name}")
            outer = match
            match = lambda o: fields_match(name_match, o) and (outer is None or outer(o))  # noqa: E731
        encode = watch.raw_encoder
        if wants_table(request):

            def encode(etype: str, entry: Entry) -> bytes:
                obj = self.tables.table(t.res, [entry.obj], request, str(entry.revision))
                return orjson.dumps({"type": etype, "object": obj}) + b"\n"

        return await watch.serve(
            request,
            cache=self.registry.cache,
            res=t.res,
            prefix=collection_prefix(t.res, t.namespace),
            params=watch.WatchParams.parse(request.query),
            match=match,
            encode=encode,
            stopping=self._stopping,
        )

    # -- writes ----------------------------------------------------------------------------------

    @staticmethod
    def field_check(request: web.Request) -> FieldCheck:
        mode = request.query.get("fieldValidation") or "Warn"
        if mode not in ("Ignore", "Warn", "Strict"):
            raise BadRequest(f"fieldValidation must be Ignore, Warn or Strict, not {mode!r}")
        return FieldCheck(mode)

    @staticmethod
    def dry_run(request: web.Request) -> bool:
        values = request.query.getall("dryRun", [])
        if any(v != "All" for v in values):
            raise BadRequest(f"unsupported dryRun value: {values}")
        return bool(values)

    async def _create(self, request: web.Request, t: Target) -> web.StreamResponse:
        obj = await self.read_dict(request)
        self.check_kind(t.res, obj)
        fields = self.field_check(request)
        created = await self.registry.create(
            t.res, t.namespace, obj, user=request[USER], dry_run=self.dry_run(request), fields=fields
        )
        return with_warnings(json_response(created, 201), fields)

    async def _update(self, request: web.Request, t: Target) -> web.StreamResponse:
        obj = await self.read_dict(request)
        self.check_kind(t.res, obj)
        fields = self.field_check(request)
        updated = await self.registry.update(
            t.res, t.namespace, t.name, obj, user=request[USER], dry_run=self.dry_run(request), fields=fields
        )
        return with_warnings(json_response(updated), fields)

    async def patch_function(self, request: web.Request, res: Resource) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """Decode a PATCH body into a function from the current object to the patched one."""
        ctype = request.content_type
        if ctype == "application/json-patch+json":
            ops = await self.read_object(request, allow_yaml=False)
            if not isinstance(ops, list):
                raise BadRequest("a JSON patch must be a JSON array of operations")
            try:
                patch = jsonpatch.JsonPatch(ops)
            except (jsonpatch.InvalidJsonPatch, TypeError, KeyError) as err:
                raise BadRequest(f"invalid JSON patch: {err}") from err

            def apply_json(obj: dict[str, Any]) -> dict[str, Any]:
                try:
                    out = patch.apply(obj)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as err:
                    raise BadRequest(f"the JSON patch could not be applied: {err}") from err
                if not isinstance(out, dict):
                    raise BadRequest("the JSON patch did not produce an object")
                return out

            return apply_json
        if ctype not in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ):
            raise UnsupportedMediaType(f"the body of the request was in an unknown format: {ctype}")
        body = await self.read_dict(request)
        if ctype == "application/merge-patch+json":
            return lambda obj: json_merge(obj, body)

        def apply_strategic(obj: dict[str, Any]) -> dict[str, Any]:
            try:
                return strategic_merge(obj, body, res)
            except PatchError as err:
                raise BadRequest(f"invalid strategic merge patch: {err}") from err

        return apply_strategic

    async def _patch(self, request: web.Request, t: Target) -> web.StreamResponse:
        dry_run = self.dry_run(request)
        if request.content_type == "application/apply-patch+yaml":
            return await self._server_side_apply(request, t, dry_run)
        apply = await self.patch_function(request, t.res)
        fields = self.field_check(request)
        patched = await self.registry.patch(
            t.res, t.namespace, t.name, apply, user=request[USER], dry_run=dry_run, fields=fields
        )
        return with_warnings(json_response(patched), fields)

    async def _server_side_apply(self, request: web.Request, t: Target, dry_run: bool) -> web.StreamResponse:
        """Server-side apply (see apply.py): create when missing, else apply onto the live object."""
        manager = request.query.get("fieldManager")
        if not manager:
            raise BadRequest("fieldManager is required for apply requests")
        applied = await self.read_dict(request)
        self.check_kind(t.res, applied)
        meta = applied.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") not in (None, t.name):
            raise BadRequest(f"the applied configuration must be for {t.res.kind} {t.name!r}")
        fields = self.field_check(request)
        gv = t.res.group_version

        def apply_onto(live: dict[str, Any] | None) -> dict[str, Any]:
            return server_side_apply(live, applied, manager=manager, api_version=gv)

        try:
            self.registry.get_entry(t.res, t.namespace, t.name)
        except NotFound:
            obj = apply_onto(None)
            obj["metadata"]["name"] = t.name
            created = await self.registry.create(
                t.res, t.namespace, obj, user=request[USER], dry_run=dry_run, fields=fields
            )
            return with_warnings(json_response(created, 201), fields)
        patched = await self.registry.patch(
            t.res, t.namespace, t.name, apply_onto, user=request[USER], dry_run=dry_run, fields=fields
        )
        return with_warnings(json_response(patched), fields)

    async def delete_options(self, request: web.Request) -> DeleteOptions:
        opts = DeleteOptions(
            grace_period_seconds=_int_param(request.query, "gracePeriodSeconds"),
            propagation_policy=request.query.get("propagationPolicy"),
            dry_run=self.dry_run(request),
        )
        if request.can_read_body:
            body = await self.read_object(request)
            if body is not None:
                if not isinstance(body, dict):
                    raise BadRequest("DeleteOptions must be a JSON object")
                self.merge_delete_options(opts, body)
        if opts.propagation_policy not in (None, "Orphan", "Background", "Foreground"):
            raise BadRequest(f"invalid propagationPolicy: {opts.propagation_policy}")
        return opts

    @staticmethod
    def merge_delete_options(opts: DeleteOptions, body: dict[str, Any]) -> None:
        grace = body.get("gracePeriodSeconds")
        if isinstance(grace, int):
            opts.grace_period_seconds = grace
        if body.get("propagationPolicy"):
            opts.propagation_policy = str(body["propagationPolicy"])
        elif body.get("orphanDependents") is True:
            opts.propagation_policy = "Orphan"
        pre = body.get("preconditions") or {}
        if isinstance(pre, dict):
            opts.precondition_uid = pre.get("uid")
            opts.precondition_rv = pre.get("resourceVersion")
        if body.get("dryRun"):
            opts.dry_run = True

    async def _delete(self, request: web.Request, t: Target) -> web.StreamResponse:
        opts = await self.delete_options(request)
        obj = await self.registry.delete(t.res, t.namespace, t.name, opts, user=request[USER])
        return json_response(obj)

    async def _delete_collection(self, request: web.Request, t: Target) -> web.StreamResponse:
        opts = await self.delete_options(request)
        match = self._predicate(request)
        rev, entries = self.registry.list_entries(
            t.res, t.namespace, (lambda e: match(e.obj)) if match is not None else None
        )
        deleted = []
        for entry in entries:
            meta = entry.obj["metadata"]
            try:
                deleted.append(
                    await self.registry.delete(
                        t.res, meta.get("namespace"), meta["name"], copy.copy(opts), user=request[USER]
                    )
                )
            except NotFound:
                continue
        return json_response(
            {
                "kind": t.res.list_kind,
                "apiVersion": t.res.group_version,
                "metadata": {"resourceVersion": str(self.registry.cache.revision or rev)},
                "items": deleted,
            }
        )
