from controlplane import resources


def test_paths_follow_the_kubernetes_rest_layout() -> None:
    assert resources.PODS.path("default", "web", "status") == "/api/v1/namespaces/default/pods/web/status"
    assert resources.DEPLOYMENTS.path("ns1") == "/apis/apps/v1/namespaces/ns1/deployments"
    assert resources.NODES.path(None, "n1") == "/api/v1/nodes/n1"
    assert resources.NODES.path("ignored", "n1") == "/api/v1/nodes/n1"


def test_every_resource_is_unique_and_found_by_kind() -> None:
    keys = [(r.group, r.version, r.plural) for r in resources.ALL_RESOURCES]
    assert len(keys) == len(set(keys))
    assert resources.for_kind("apps/v1", "Deployment") is resources.DEPLOYMENTS
    assert resources.for_kind("v1", "Deployment") is None
    assert resources.lookup("discovery.k8s.io", "v1", "endpointslices") is resources.ENDPOINTSLICES
    assert "v1" in resources.by_group_version()
