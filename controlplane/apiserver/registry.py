"""REST semantics on top of the store and the cache: what create, update, patch and delete mean for
an object's metadata (uid, generation, finalizers, deletionTimestamp, resourceVersion), for
subresources, and for Services' allocated addresses. Pure HTTP concerns stay in handlers.py.

Reads come from the cache; every write goes to the store with the revision it was based on
(optimistic concurrency) and then waits until the cache has seen it, so a client always reads its
own writes — and a patch that lost a race is simply retried on the fresh object."""

from __future__ import annotations

import contextlib
import copy
import datetime
import logging
import os
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.apiserver.allocator import AllocationError, NodePorts, ServiceIPs, service_ips, service_node_ports
from controlplane.apiserver.cache import Entry, WatchCache
from controlplane.apiserver.errors import (
    ApiError,
    BadRequest,
    Cause,
    InternalError,
    already_exists,
    conflict,
    invalid,
    not_found,
)
from controlplane.apiserver.keys import collection_prefix, object_key
from controlplane.apiserver.policy import AdmissionRequest, PermissivePolicy, Policy
from controlplane.resources import NAMESPACES, PODS, SERVICES, Resource
from controlplane.storage import Backend, KeyExists, KeyNotFound, RevisionConflict
from controlplane.validation import drop_type_dependent_fields, prune_unknown_fields, strict_decoding_message

Obj = dict[str, Any]
log = logging.getLogger(__name__)

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # as Kubernetes' generateName: no vowels, no lookalikes
# uids and generated names must be unique, not secret: one seeded generator instead of a getrandom()
# syscall per character (measured ~50 µs each on a loaded microVM).
_RNG = random.Random(os.urandom(32))


def new_uid() -> str:
    return str(uuid.UUID(int=_RNG.getrandbits(128), version=4))


_PATCH_RETRIES = 50  # Kubernetes' GuaranteedUpdate retries conflicts without limit
_CACHE_WAIT = 5.0  # longest a write waits for the cache to show it (read-your-writes), in seconds
# Kinds whose status is reset on create, as their Kubernetes strategies do (status is the
# controllers' to write, through /status). Nodes and namespaces keep what the creator sent.
_RESET_STATUS_ON_CREATE = frozenset(
    {"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"}
)
_TERMINAL_PHASES = ("Succeeded", "Failed")


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age_seconds(timestamp: str | None) -> float:
    """Seconds since an RFC 3339 timestamp written by this server; 0 when absent or unparsable."""
    if not timestamp:
        return 0.0
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return 0.0
    return (datetime.datetime.now(datetime.UTC) - then).total_seconds()


def _later_rfc3339(seconds: int) -> str:
    t = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: Obj) -> Obj:
    """Everything generation counts: all but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _encode(obj: Obj) -> bytes:
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
        obj = {**obj, "metadata": meta}
    return orjson.dumps(obj)


@contextlib.contextmanager
def malformed(res: Resource, name: str) -> Iterator[None]:
    """Type confusion in a request body (a list where an object belongs, …) surfaces as Python errors
    deep in defaulting, validation or admission; Kubernetes rejects such bodies when decoding them.
    Either way it is the client's 400, never the server's 500."""
    try:
        yield
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as err:
        log.debug("malformed %s %r", res.kind, name, exc_info=True)
        raise BadRequest(f'{res.kind} "{name}" is malformed: {type(err).__name__}: {err}') from err


@dataclass
class FieldCheck:
    """How to treat fields the kind does not define (the `fieldValidation` parameter): Ignore and Warn
    drop them (Warn also reports them in `warnings`), Strict rejects the request."""

    mode: str = "Warn"
    warnings: list[str] = field(default_factory=list)

    def apply(self, res: Resource, obj: Obj) -> None:
        if self.mode == "Ignore":
            prune_unknown_fields(res, obj)
            return
        unknown = prune_unknown_fields(res, obj)
        if unknown and self.mode == "Strict":
            raise BadRequest(strict_decoding_message(res, unknown))
        self.warnings += [f'unknown field "{path}"' for path in unknown]


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None  # Orphan, Background, Foreground
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False


class Registry:
    def __init__(
        self,
        backend: Backend,
        cache: WatchCache,
        *,
        service_cidr: str = "10.96.0.0/16",
        policy: Policy | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.policy: Policy = policy or PermissivePolicy()
        self.service_ips = ServiceIPs(service_cidr)
        self.node_ports = NodePorts()

    def rebuild_allocations(self) -> None:
        """Mark the addresses of stored Services as used (at start, after the cache filled)."""
        for entry in self.cache.list(collection_prefix(SERVICES)):
            for ip in service_ips(entry.obj):
                self.service_ips.mark_used(ip)
            for port in service_node_ports(entry.obj):
                self.node_ports.mark_used(port)

    # -- reads -----------------------------------------------------------------------------------

    def get_entry(self, res: Resource, namespace: str | None, name: str) -> Entry:
        entry = self.cache.get(object_key(res, namespace, name))
        if entry is None:
            raise not_found(res, name)
        return entry

    def list_entries(
        self, res: Resource, namespace: str | None, predicate: Callable[[Entry], bool] | None = None
    ) -> tuple[int, list[Entry]]:
        rev = self.cache.revision
        return rev, self.cache.list(collection_prefix(res, namespace), predicate)

    # -- create ----------------------------------------------------------------------------------

    async def create(
        self,
        res: Resource,
        namespace: str | None,
        obj: Obj,
        *,
        user: Any = None,
        dry_run: bool = False,
        fields: FieldCheck | None = None,
    ) -> Obj:
        with malformed(res, ""):
            obj, name, generate = self._prepare_create(res, namespace, obj, fields)
        meta = obj["metadata"]
        for attempt in range(5):
            if generate and not name:
                meta["name"] = generate + "".join(_RNG.choices(_NAME_CHARS, k=5))
            await self._check_and_admit(
                "CREATE", res, obj, None, subresource="", namespace=namespace, user=user, dry_run=dry_run
            )
            if dry_run:
                return obj
            with malformed(res, meta["name"]):
                release = self._allocate_service(obj, None) if res is SERVICES else _noop
            try:
                rev = await self.backend.create(object_key(res, namespace, meta["name"]), _encode(obj))
            except KeyExists as err:
                release()
                if generate and not name and attempt < 4:
                    continue
                raise already_exists(res, meta["name"]) from err
            except BaseException:
                release()
                raise
            return await self._after_write(res, namespace, meta["name"], rev)
        raise InternalError("could not generate a unique name")  # unreachable: the loop raises

    def _prepare_create(
        self, res: Resource, namespace: str | None, obj: Obj, fields: FieldCheck | None
    ) -> tuple[Obj, str | None, str | None]:
        (fields or FieldCheck()).apply(res, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise BadRequest("metadata must be an object")
        self._check_namespace(res, namespace, meta)
        name = meta.get("name")
        generate = meta.get("generateName")
        if not name and not generate:
            raise invalid(res, "", [Cause("metadata.name", "Required value: name or generateName is required")])
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        if res.kind in _RESET_STATUS_ON_CREATE:
            obj["status"] = {"phase": "Pending"} if res is PODS else {}
        if res is NAMESPACES:
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        obj["apiVersion"], obj["kind"] = res.group_version, res.kind
        return obj, name, generate

    async def _check_and_admit(
        self,
        operation: str,
        res: Resource,
        new: Obj,
        old: Obj | None,
        *,
        subresource: str,
        namespace: str | None,
        user: Any,
        dry_run: bool,
    ) -> None:
        """Defaulting (main resource only), validation and admission of the object about to be stored."""
        name = str(new["metadata"].get("name", ""))
        with malformed(res, name):
            if res is SERVICES and old is not None and not subresource:
                drop_type_dependent_fields(new, old)  # leaving NodePort: the old node ports go too
            if subresource in ("", "finalize"):
                self.policy.apply_defaults(res, new)
            baseline = old
            if subresource == "ephemeralcontainers" and old is not None:
                # Pod updates may not change the spec, except through this subresource: validate the
                # new pod against an old one that already has the new list.
                baseline = copy.deepcopy(old)
                baseline.setdefault("spec", {})["ephemeralContainers"] = new["spec"]["ephemeralContainers"]
            causes = self.policy.validate(res, new, baseline)
            if causes:
                raise invalid(res, name, causes)
            await self.policy.admit(
                AdmissionRequest(operation, res, subresource, namespace, name, new, old, user, dry_run)
            )

    def _check_namespace(self, res: Resource, namespace: str | None, meta: Obj) -> None:
        if not res.namespaced:
            meta.pop("namespace", None)
            return
        given = meta.get("namespace")
        if given and namespace and given != namespace:
            raise BadRequest("the namespace of the provided object does not match the namespace sent on the request")
        if not namespace:
            raise BadRequest(f"{res.kind} is namespaced: the request must name a namespace")
        meta["namespace"] = namespace

    async def _after_write(self, res: Resource, namespace: str | None, name: str, rev: int) -> Obj:
        await self.cache.wait_for(rev, timeout=_CACHE_WAIT)
        entry = self.cache.get(object_key(res, namespace, name))
        if entry is None or entry.revision < rev:  # deleted meanwhile, or the cache lags: answer from the write
            got = await self.backend.get(object_key(res, namespace, name))
            if got.kv is None:
                raise not_found(res, name)
            obj: Obj = orjson.loads(got.kv.value)
            obj["metadata"]["resourceVersion"] = str(got.kv.mod_revision)
            return obj
        fresh: Obj = orjson.loads(entry.raw)  # the cache's object is shared: hand out a copy
        return fresh

    # -- update ----------------------------------------------------------------------------------

    async def update(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        obj: Obj,
        *,
        subresource: str = "",
        user: Any = None,
        dry_run: bool = False,
        base: Entry | None = None,
        fields: FieldCheck | None = None,
    ) -> Obj:
        """Replace an object (PUT). `base` is the entry a patch was computed from: its revision is the
        precondition; a PUT's precondition is the resourceVersion in the body, if any."""
        with malformed(res, name):
            (fields or FieldCheck()).apply(res, obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise BadRequest("metadata must be an object")
        if meta.get("name") not in (None, name):
            raise BadRequest(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        self._check_namespace(res, namespace, meta)
        current = base or self.get_entry(res, namespace, name)
        old = current.obj
        rv = meta.get("resourceVersion")
        if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(
                res, name, "the object has been modified; please apply your changes to the latest version and try again"
            )
        with malformed(res, name):
            new = self._merge_for_update(res, subresource, old, obj)
            finished = self._finished_terminating(res, new)
        if finished:
            return await self._delete_now(res, namespace, name, current, dry_run=dry_run)
        await self._check_and_admit(
            "UPDATE", res, new, old, subresource=subresource, namespace=namespace, user=user, dry_run=dry_run
        )
        if dry_run:
            return new
        with malformed(res, name):
            release = self._allocate_service(new, old) if res is SERVICES and not subresource else _noop
        try:
            rev = await self.backend.update(
                object_key(res, namespace, name), _encode(new), expected_revision=current.revision
            )
        except RevisionConflict as err:
            release()
            raise conflict(
                res, name, "the object has been modified; please apply your changes to the latest version and try again"
            ) from err
        except KeyNotFound as err:
            release()
            raise not_found(res, name) from err
        except BaseException:
            release()
            raise
        if res is SERVICES and not subresource:
            self._release_service(old, keep=new)
        return await self._after_write(res, namespace, name, rev)

    async def replace_unchecked(
        self, res: Resource, namespace: str | None, name: str, obj: Obj, *, base: Entry, user: Any = None
    ) -> Obj:
        """Write `obj` whole, based on `base` — for operations that own several parts of an object at
        once (a pod binding sets spec.nodeName and the PodScheduled condition)."""
        await self.policy.admit(AdmissionRequest("CREATE", res, "binding", namespace, name, obj, base.obj, user))
        try:
            rev = await self.backend.update(
                object_key(res, namespace, name), _encode(obj), expected_revision=base.revision
            )
        except RevisionConflict as err:
            raise conflict(res, name, "the object has been modified; please retry") from err
        except KeyNotFound as err:
            raise not_found(res, name) from err
        return await self._after_write(res, namespace, name, rev)

    @staticmethod
    def _finished_terminating(res: Resource, obj: Obj) -> bool:
        """A deleted object goes away once its finalizers are gone (and its grace period is over:
        a pod still terminating on its node stays until the node deletes it with grace 0)."""
        meta = obj.get("metadata") or {}
        if not meta.get("deletionTimestamp") or meta.get("finalizers") or meta.get("deletionGracePeriodSeconds"):
            return False
        return res is not NAMESPACES or not (obj.get("spec") or {}).get("finalizers")

    def _merge_for_update(self, res: Resource, subresource: str, old: Obj, obj: Obj) -> Obj:
        old_meta = old["metadata"]
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = obj.get("status", {})
            return new
        if subresource == "finalize":
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["finalizers"] = (obj.get("spec") or {}).get("finalizers") or []
            return new
        if subresource == "ephemeralcontainers":  # kubectl debug: only this list of the pod spec changes
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["ephemeralContainers"] = (obj.get("spec") or {}).get("ephemeralContainers") or []
            return new
        new = dict(obj)
        meta = dict(obj.get("metadata") or {})
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        meta.pop("resourceVersion", None)
        meta["name"] = old_meta["name"]
        new["metadata"] = meta
        new["apiVersion"], new["kind"] = res.group_version, res.kind
        if "status" in res.subresources and res is not NAMESPACES:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if res is NAMESPACES:
            new["status"] = old.get("status", {})
            new.setdefault("spec", {})["finalizers"] = (old.get("spec") or {}).get("finalizers", [])
        if _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        return new

    async def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        apply: Callable[[Obj], Obj],
        *,
        subresource: str = "",
        user: Any = None,
        dry_run: bool = False,
        fields: FieldCheck | None = None,
    ) -> Obj:
        """Read-modify-write with `apply` computing the new object; retried when a concurrent write wins
        (unless the patch itself carries a resourceVersion precondition)."""
        for attempt in range(_PATCH_RETRIES):
            current = self.get_entry(res, namespace, name)
            with malformed(res, name):
                new = apply(copy.deepcopy(current.obj))
                if not isinstance(new, dict) or not isinstance(new.setdefault("metadata", {}), dict):
                    raise BadRequest("the patched object is not a JSON object with an object in metadata")
                new_meta = new["metadata"]
                pinned = new_meta.get("resourceVersion") not in (None, current.obj["metadata"]["resourceVersion"])
                if not pinned:
                    new_meta.pop("resourceVersion", None)
            try:
                return await self.update(
                    res,
                    namespace,
                    name,
                    new,
                    subresource=subresource,
                    user=user,
                    dry_run=dry_run,
                    base=current,
                    fields=fields,
                )
            except ApiError as err:
                cause = err.__cause__
                if not isinstance(cause, RevisionConflict) or pinned or attempt == _PATCH_RETRIES - 1:
                    raise
                await self.cache.wait_for(cause.actual, timeout=1.0)  # then retry on the winner's object
        raise InternalError("patch retries exhausted")  # unreachable

    # -- delete ----------------------------------------------------------------------------------

    async def delete(
        self, res: Resource, namespace: str | None, name: str, opts: DeleteOptions, *, user: Any = None
    ) -> Obj:
        """A DELETE names no resourceVersion (unless it has a precondition): one that loses a race
        with another write (a status update, a controller's patch) is retried on the new object,
        never answered 409 — as Kubernetes' GuaranteedUpdate does."""
        for attempt in range(_PATCH_RETRIES):
            current = self.get_entry(res, namespace, name)
            old = current.obj
            meta = old["metadata"]
            if opts.precondition_uid and opts.precondition_uid != meta.get("uid"):
                raise conflict(res, name, "Precondition failed: UID in precondition does not match the object")
            if opts.precondition_rv and opts.precondition_rv != meta.get("resourceVersion"):
                raise conflict(res, name, "Precondition failed: resourceVersion in precondition does not match")
            await self.policy.admit(AdmissionRequest("DELETE", res, "", namespace, name, None, old, user, opts.dry_run))
            try:
                with malformed(res, name):
                    return await self._delete(res, namespace, name, current, opts)
            except ApiError as err:
                cause = err.__cause__
                if not isinstance(cause, RevisionConflict) or opts.precondition_rv or attempt == _PATCH_RETRIES - 1:
                    raise
                await self.cache.wait_for(cause.actual, timeout=1.0)  # then retry on the winner's object
        raise InternalError("delete retries exhausted")  # unreachable

    async def _delete(
        self, res: Resource, namespace: str | None, name: str, current: Entry, opts: DeleteOptions
    ) -> Obj:
        old = current.obj
        meta = old["metadata"]
        new = copy.deepcopy(old)
        new_meta = new["metadata"]
        finalizers: list[str] = list(new_meta.get("finalizers") or [])
        if opts.propagation_policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif opts.propagation_policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        grace = self._grace_period(res, old, opts)
        pending = bool(finalizers) or grace > 0
        if res is NAMESPACES:
            pending = pending or bool((old.get("spec") or {}).get("finalizers"))
            new.setdefault("status", {})["phase"] = "Terminating"
        if not pending:
            return await self._delete_now(res, namespace, name, current, dry_run=opts.dry_run)
        if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
            shorter = grace < int(meta.get("deletionGracePeriodSeconds") or 0)
            if not shorter:
                return old  # already terminating; nothing changes
        new_meta["finalizers"] = finalizers
        new_meta["deletionTimestamp"] = _later_rfc3339(grace) if grace else now_rfc3339()
        new_meta["deletionGracePeriodSeconds"] = grace
        if opts.dry_run:
            return new
        try:
            rev = await self.backend.update(
                object_key(res, namespace, name), _encode(new), expected_revision=current.revision
            )
        except RevisionConflict as err:
            raise conflict(res, name, "the object has been modified; please retry the deletion") from err
        except KeyNotFound as err:
            raise not_found(res, name) from err
        return await self._after_write(res, namespace, name, rev)

    @staticmethod
    def _grace_period(res: Resource, obj: Obj, opts: DeleteOptions) -> int:
        """Only pods that a node may be running terminate gracefully (the node deletes them for good)."""
        if res is not PODS:
            return 0
        spec = obj.get("spec") or {}
        if not spec.get("nodeName") or (obj.get("status") or {}).get("phase") in _TERMINAL_PHASES:
            return 0
        if opts.grace_period_seconds is not None:
            return max(0, opts.grace_period_seconds)
        default = spec.get("terminationGracePeriodSeconds")
        return int(default) if isinstance(default, int) and default >= 0 else 30

    async def _delete_now(
        self, res: Resource, namespace: str | None, name: str, current: Entry, *, dry_run: bool
    ) -> Obj:
        if dry_run:
            return current.obj
        try:
            rev = await self.backend.delete(object_key(res, namespace, name), expected_revision=current.revision)
        except RevisionConflict as err:
            raise conflict(res, name, "the object has been modified; please retry the deletion") from err
        except KeyNotFound as err:
            raise not_found(res, name) from err
        if res is SERVICES:
            self._release_service(current.obj, keep=None)
        # Bounded: the delete is durable already; a lagging cache only delays the client's next read.
        await self.cache.wait_for(rev, timeout=_CACHE_WAIT)
        obj = copy.deepcopy(current.obj)
        obj["metadata"]["resourceVersion"] = str(rev)
        return obj

    # -- services --------------------------------------------------------------------------------

    def _allocate_service(self, svc: Obj, old: Obj | None) -> Callable[[], None]:
        """Fill in clusterIP(s) and nodePorts; returns an undo for when the write fails."""
        spec = svc.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        taken_ips: list[str] = []
        taken_ports: list[int] = []

        def undo() -> None:
            for ip in taken_ips:
                self.service_ips.release(ip)
            for port in taken_ports:
                self.node_ports.release(port)

        try:
            svc_type = spec.get("type") or "ClusterIP"
            if svc_type == "ExternalName":
                return undo
            if old is not None and old_spec.get("clusterIP"):
                if spec.get("clusterIP") in (None, "", old_spec["clusterIP"]):
                    spec["clusterIP"] = old_spec["clusterIP"]
                    spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_spec["clusterIP"]]
                else:
                    raise invalid(SERVICES, svc["metadata"]["name"], [Cause("spec.clusterIP", "field is immutable")])
            elif spec.get("clusterIP") != "None":
                ip = self.service_ips.allocate(spec.get("clusterIP") or None)
                taken_ips.append(ip)
                spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
            else:
                spec["clusterIPs"] = ["None"]
            if svc_type in ("NodePort", "LoadBalancer"):
                old_ports = {
                    (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or []
                }
                for port in spec.get("ports") or []:
                    wanted = port.get("nodePort")
                    previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                    if wanted and wanted == previous:
                        continue
                    if not wanted and previous:
                        port["nodePort"] = previous
                        continue
                    port["nodePort"] = self.node_ports.allocate(wanted or None)
                    taken_ports.append(port["nodePort"])
            else:
                for port in spec.get("ports") or []:
                    port.pop("nodePort", None)
        except AllocationError as err:
            undo()
            field = "spec.clusterIP" if "IP" in str(err) or "." in str(err) else "spec.ports[].nodePort"
            raise invalid(SERVICES, svc["metadata"].get("name", ""), [Cause(field, str(err))]) from err
        return undo

    def _release_service(self, old: Obj, *, keep: Obj | None) -> None:
        keep_ips = set(service_ips(keep)) if keep else set()
        keep_ports = set(service_node_ports(keep)) if keep else set()
        for ip in service_ips(old):
            if ip not in keep_ips and ip != self.service_ips.kubernetes_ip:
                self.service_ips.release(ip)
        for port in service_node_ports(old):
            if port not in keep_ports:
                self.node_ports.release(port)


def _noop() -> None:
    return None
