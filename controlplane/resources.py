"""The API resources tinykube serves: one table shared by the API server (discovery, routing,
storage keys), the client (URL building) and the controllers. Adding a resource here makes it
discoverable, storable and watchable; behaviour beyond plain storage lives with its controller."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = field(
        default=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    )

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        """`v1` for the core group, `apps/v1` otherwise (the apiVersion field of objects)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path of a collection, an object or an object's subresource."""
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource is not None:
                base += f"/{subresource}"
        return base


_ALL = ("all",)


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    *short: str,
    sub: tuple[str, ...] = (),
    cat: tuple[str, ...] = (),
) -> Resource:
    return Resource(group, version, kind, plural, namespaced, short, sub, cat)


PODS = _r(
    "",
    "v1",
    "Pod",
    "pods",
    True,
    "po",
    sub=("status", "binding", "eviction", "log", "exec", "attach", "portforward", "ephemeralcontainers"),
    cat=_ALL,
)
SERVICES = _r("", "v1", "Service", "services", True, "svc", sub=("status", "proxy"), cat=_ALL)
ENDPOINTS = _r("", "v1", "Endpoints", "endpoints", True, "ep")
NAMESPACES = _r("", "v1", "Namespace", "namespaces", False, "ns", sub=("status", "finalize"))
NODES = _r("", "v1", "Node", "nodes", False, "no", sub=("status", "proxy"))
CONFIGMAPS = _r("", "v1", "ConfigMap", "configmaps", True, "cm")
SECRETS = _r("", "v1", "Secret", "secrets", True)
SERVICEACCOUNTS = _r("", "v1", "ServiceAccount", "serviceaccounts", True, "sa", sub=("token",))
EVENTS = _r("", "v1", "Event", "events", True, "ev")
RESOURCEQUOTAS = _r("", "v1", "ResourceQuota", "resourcequotas", True, "quota", sub=("status",))
LIMITRANGES = _r("", "v1", "LimitRange", "limitranges", True, "limits")
PERSISTENTVOLUMES = _r("", "v1", "PersistentVolume", "persistentvolumes", False, "pv", sub=("status",))
PERSISTENTVOLUMECLAIMS = _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, "pvc", sub=("status",))
REPLICATIONCONTROLLERS = _r(
    "", "v1", "ReplicationController", "replicationcontrollers", True, "rc", sub=("status", "scale"), cat=_ALL
)

DEPLOYMENTS = _r("apps", "v1", "Deployment", "deployments", True, "deploy", sub=("status", "scale"), cat=_ALL)
REPLICASETS = _r("apps", "v1", "ReplicaSet", "replicasets", True, "rs", sub=("status", "scale"), cat=_ALL)
DAEMONSETS = _r("apps", "v1", "DaemonSet", "daemonsets", True, "ds", sub=("status",), cat=_ALL)
STATEFULSETS = _r("apps", "v1", "StatefulSet", "statefulsets", True, "sts", sub=("status", "scale"), cat=_ALL)
CONTROLLERREVISIONS = _r("apps", "v1", "ControllerRevision", "controllerrevisions", True)

JOBS = _r("batch", "v1", "Job", "jobs", True, sub=("status",), cat=_ALL)
CRONJOBS = _r("batch", "v1", "CronJob", "cronjobs", True, "cj", sub=("status",), cat=_ALL)

ENDPOINTSLICES = _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True)
LEASES = _r("coordination.k8s.io", "v1", "Lease", "leases", True)

ROLES = _r("rbac.authorization.k8s.io", "v1", "Role", "roles", True)
ROLEBINDINGS = _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True)
CLUSTERROLES = _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False)
CLUSTERROLEBINDINGS = _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False)

HORIZONTALPODAUTOSCALERS = _r(
    "autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, "hpa", sub=("status",), cat=_ALL
)
NETWORKPOLICIES = _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, "netpol")
EVENTS_V1 = _r("events.k8s.io", "v1", "Event", "events", True, "ev")

ALL_RESOURCES: tuple[Resource, ...] = (
    PODS,
    SERVICES,
    ENDPOINTS,
    NAMESPACES,
    NODES,
    CONFIGMAPS,
    SECRETS,
    SERVICEACCOUNTS,
    EVENTS,
    RESOURCEQUOTAS,
    LIMITRANGES,
    PERSISTENTVOLUMES,
    PERSISTENTVOLUMECLAIMS,
    REPLICATIONCONTROLLERS,
    DEPLOYMENTS,
    REPLICASETS,
    DAEMONSETS,
    STATEFULSETS,
    CONTROLLERREVISIONS,
    JOBS,
    CRONJOBS,
    ENDPOINTSLICES,
    LEASES,
    ROLES,
    ROLEBINDINGS,
    CLUSTERROLES,
    CLUSTERROLEBINDINGS,
    HORIZONTALPODAUTOSCALERS,
    NETWORKPOLICIES,
    EVENTS_V1,
)


def by_group_version() -> dict[str, list[Resource]]:
    """Resources grouped by `group/version` (core as `v1`), in table order, for discovery."""
    out: dict[str, list[Resource]] = {}
    for res in ALL_RESOURCES:
        out.setdefault(res.group_version, []).append(res)
    return out


def lookup(group: str, version: str, plural: str) -> Resource | None:
    for res in ALL_RESOURCES:
        if (res.group, res.version, res.plural) == (group, version, plural):
            return res
    return None


def for_kind(api_version: str, kind: str) -> Resource | None:
    """The resource an object of this apiVersion/kind is stored as."""
    for res in ALL_RESOURCES:
        if res.group_version == api_version and res.kind == kind:
            return res
    return None
