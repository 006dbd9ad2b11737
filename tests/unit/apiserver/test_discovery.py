"""Discovery documents: legacy and aggregated (v2) list the same resources; OpenAPI v3 declares the
fieldValidation parameter kubectl checks before leaving validation to the server."""

from __future__ import annotations

from controlplane.apiserver import discovery
from controlplane.resources import ALL_RESOURCES


def test_aggregated_discovery_is_chosen_only_when_asked_for() -> None:
    kubectl = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
    )
    assert discovery.wants_aggregated(kubectl)
    assert not discovery.wants_aggregated("application/json, */*")


def test_aggregated_and_legacy_discovery_list_every_resource() -> None:
    aggregated = set()
    for core in (True, False):
        for group in discovery.aggregated_discovery(core=core)["items"]:
            for version in group["versions"]:
                aggregated |= {
                    (group["metadata"]["name"], version["version"], r["resource"]) for r in version["resources"]
                }
    legacy = set()
    for gv in ["v1", *(v["groupVersion"] for g in discovery.api_group_list()["groups"] for v in g["versions"])]:
        doc = discovery.api_resource_list(gv)
        assert doc is not None
        group, _, version = gv.rpartition("/")
        legacy |= {(group, version, r["name"]) for r in doc["resources"] if "/" not in r["name"]}
    assert aggregated == legacy
    assert {(r.group, r.version, r.plural) for r in ALL_RESOURCES} <= aggregated


def test_scale_subresource_speaks_autoscaling_v1_scale() -> None:
    apps = next(g for g in discovery.aggregated_discovery(core=False)["items"] if g["metadata"]["name"] == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    scale = next(s for s in deployments["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}


def test_openapi_v3_patch_operations_declare_field_validation() -> None:
    root = discovery.openapi_v3_root()
    assert "apis/apps/v1" in root["paths"]
    doc = discovery.openapi_v3_doc("apps/v1")
    assert doc is not None
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert any(p["name"] == "fieldValidation" for p in patch["parameters"])


def test_openapi_v3_doc_carries_kind_schemas_with_their_group_version_kind() -> None:
    schemas = discovery.openapi_v3_doc("v1")["components"]["schemas"]  # type: ignore[index]
    pod = schemas["io.k8s.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Pod"}]
    assert pod["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.v1.PodSpec"}]
    spec = schemas["io.k8s.v1.PodSpec"]
    assert "containers" in spec["required"]
    assert spec["properties"]["containers"]["items"] == {"$ref": "#/components/schemas/io.k8s.v1.Container"}
    assert spec["properties"]["nodeName"]["type"] == "string"
    events = discovery.openapi_v3_doc("events.k8s.io/v1")["components"]["schemas"]  # type: ignore[index]
    assert "io.k8s.events.v1.Event" in events
