"""The default ClusterRoles and ClusterRoleBindings the server creates at first start (when missing).

Modelled on Kubernetes' bootstrap policy, reduced to the resources tinykube serves. Nodes are
authorized by the `system:node` role bound to `system:nodes` (Kubernetes uses a dedicated Node
authorizer instead; we have none, so the binding stands in). Nodes joining with a bootstrap token get
the node role through the group `system:bootstrappers:nodes`.
"""

from __future__ import annotations

from typing import Any

from controlplane.auth.types import ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, MASTERS, NODES_GROUP

__all__ = [
    "AUTOUPDATE",
    "CLUSTER_INFO",
    "NODE_BOOTSTRAP_GROUP",
    "NODE_CERTIFICATE_PATH",
    "default_cluster_role_bindings",
    "default_cluster_roles",
    "default_objects",
]

NODE_BOOTSTRAP_GROUP = "system:bootstrappers:nodes"
# Where a joining node gets its client certificate signed (see controlplane/apiserver/nodecerts.py).
NODE_CERTIFICATE_PATH = "/tinykube/node-certificate"
# The public ConfigMap (namespace, name) a joining node reads the cluster CA from, like kubeadm's.
CLUSTER_INFO = ("kube-public", "cluster-info")
MONITORING_GROUP = "system:monitoring"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
_RBAC = "rbac.authorization.k8s.io"
_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]

# Resources users manage in a namespace, by API group (for admin/edit/view).
_WORKLOADS: dict[str, list[str]] = {
    "": [
        "pods",
        "pods/log",
        "pods/exec",
        "pods/attach",
        "pods/portforward",
        "pods/eviction",
        "pods/status",
        "services",
        "endpoints",
        "configmaps",
        "serviceaccounts",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "events",
    ],
    "apps": [
        "deployments",
        "deployments/scale",
        "replicasets",
        "replicasets/scale",
        "daemonsets",
        "statefulsets",
        "statefulsets/scale",
        "controllerrevisions",
    ],
    "batch": ["jobs", "cronjobs"],
    "autoscaling": ["horizontalpodautoscalers"],
    "networking.k8s.io": ["networkpolicies"],
    "discovery.k8s.io": ["endpointslices"],
    "coordination.k8s.io": ["leases"],
}


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {AUTOUPDATE: "true"},
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def _role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole", "metadata": _meta(name), "rules": rules}


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _binding(name: str, role: str, subjects: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": _RBAC, "kind": kind, "name": subject} for kind, subject in subjects],
    }


def _workload_rules(verbs: list[str], *, secrets: bool) -> list[dict[str, Any]]:
    rules = [_rule([group], list(resources), verbs) for group, resources in _WORKLOADS.items()]
    rules.append(
        _rule(
            [""],
            [
                "resourcequotas",
                "limitranges",
                "namespaces",
                "namespaces/status",
                "resourcequotas/status",
                "pods/status",
                "services/status",
                "deployments/status",
            ],
            _READ,
        )
    )
    if secrets:
        rules.append(_rule([""], ["secrets"], verbs))
    return rules


def default_cluster_roles() -> list[dict[str, Any]]:
    discovery_urls = [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/readyz",
        "/version",
        "/version/",
        "/openapi",
        "/openapi/*",
    ]
    return [
        _role("cluster-admin", [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        _role(
            "admin",
            [
                *_workload_rules([*_READ, *_WRITE], secrets=True),
                _rule([_RBAC], ["roles", "rolebindings"], [*_READ, *_WRITE]),
            ],
        ),
        _role("edit", _workload_rules([*_READ, *_WRITE], secrets=True)),
        _role("view", _workload_rules(_READ, secrets=False)),
        _role("system:discovery", [{"nonResourceURLs": discovery_urls, "verbs": ["get"]}]),
        _role(
            "system:public-info-viewer",
            [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}],
        ),
        _role(
            "system:basic-user",
            [
                _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
                _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
            ],
        ),
        _role(
            "system:node",
            [
                _rule([""], ["nodes"], [*_READ, "create", "update", "patch", "delete"]),
                _rule([""], ["nodes/status"], ["patch", "update"]),
                _rule([""], ["pods"], [*_READ, "create", "delete"]),
                _rule([""], ["pods/status"], ["patch", "update"]),
                _rule([""], ["pods/eviction"], ["create"]),
                _rule([""], ["services", "endpoints"], _READ),
                # By name only: a node reads the Secrets/ConfigMaps its pods mount, never lists them all
                # (Kubernetes narrows this further to its own pods' objects with the Node authorizer).
                _rule([""], ["configmaps", "secrets", "namespaces"], ["get"]),
                _rule([""], ["persistentvolumeclaims", "persistentvolumes"], ["get"]),
                _rule([""], ["serviceaccounts/token"], ["create"]),
                _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"]),
                _rule(["coordination.k8s.io"], ["leases"], [*_READ, "create", "update", "patch", "delete"]),
                _rule(["discovery.k8s.io"], ["endpointslices"], _READ),
            ],
        ),
        _role(
            "system:monitoring", [{"nonResourceURLs": ["/metrics", "/healthz", "/livez", "/readyz"], "verbs": ["get"]}]
        ),
        _role("system:node-bootstrapper", [{"nonResourceURLs": [NODE_CERTIFICATE_PATH], "verbs": ["post"]}]),
        _role(
            "system:node-proxier",
            [
                _rule([""], ["services", "endpoints", "nodes"], _READ),
                _rule(["discovery.k8s.io"], ["endpointslices"], _READ),
                _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"]),
            ],
        ),
    ]


def default_cluster_role_bindings() -> list[dict[str, Any]]:
    return [
        _binding("cluster-admin", "cluster-admin", [("Group", MASTERS)]),
        _binding("system:discovery", "system:discovery", [("Group", ALL_AUTHENTICATED)]),
        _binding("system:basic-user", "system:basic-user", [("Group", ALL_AUTHENTICATED)]),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            [("Group", ALL_AUTHENTICATED), ("Group", ALL_UNAUTHENTICATED)],
        ),
        _binding("system:node", "system:node", [("Group", NODES_GROUP), ("Group", NODE_BOOTSTRAP_GROUP)]),
        _binding("system:node-proxier", "system:node-proxier", [("User", "system:kube-proxy")]),
        _binding("system:monitoring", "system:monitoring", [("Group", MONITORING_GROUP)]),
        _binding("system:node-bootstrapper", "system:node-bootstrapper", [("Group", NODE_BOOTSTRAP_GROUP)]),
    ]


def cluster_info_access() -> list[dict[str, Any]]:
    """Anonymous clients may read the one public ConfigMap holding the CA (a node that joins has no
    trusted CA yet; it checks the content against its token or a CA hash instead)."""
    namespace, name = CLUSTER_INFO
    role = {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "Role",
        "metadata": _meta("system:cluster-info-reader", namespace),
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [name], "verbs": ["get"]}],
    }
    binding = {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": _meta("system:cluster-info-reader", namespace),
        "roleRef": {"apiGroup": _RBAC, "kind": "Role", "name": "system:cluster-info-reader"},
        "subjects": [{"apiGroup": _RBAC, "kind": "User", "name": "system:anonymous"}],
    }
    return [role, binding]


def default_objects() -> list[dict[str, Any]]:
    """Roles first, then bindings: the order to create them in."""
    return [*default_cluster_roles(), *default_cluster_role_bindings(), *cluster_info_access()]
