"""Admission plugins over a fake object reader."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.admission import (
    TOKEN_MOUNT_PATH,
    Forbidden,
    NotFound,
    ServiceAccountAdmission,
    default_chain,
)
from controlplane.admission.testing import FakeAttributes, FakeReader
from controlplane.resources import (
    CONFIGMAPS,
    EVENTS,
    LIMITRANGES,
    NAMESPACES,
    PODS,
    RESOURCEQUOTAS,
    SERVICEACCOUNTS,
    SERVICES,
)


def _reader(*, terminating: bool = False) -> FakeReader:
    reader = FakeReader()
    phase = "Terminating" if terminating else "Active"
    reader.add(NAMESPACES, {"metadata": {"name": "team"}, "status": {"phase": phase}})
    reader.add(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": "team"}})
    return reader


def _pod(name: str = "p", **resources: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if resources:
        container["resources"] = resources
    return {"metadata": {"name": name, "namespace": "team"}, "spec": {"containers": [container]}}


def _create(res: Any, obj: dict[str, Any], namespace: str = "team") -> FakeAttributes:
    return FakeAttributes("CREATE", res, namespace, obj["metadata"]["name"], obj)


async def test_create_in_a_missing_namespace_is_not_found() -> None:
    with pytest.raises(NotFound, match='namespaces "nowhere" not found'):
        await default_chain(_reader()).admit(_create(CONFIGMAPS, {"metadata": {"name": "c"}}, "nowhere"))


async def test_create_in_a_terminating_namespace_is_forbidden_except_events() -> None:
    chain = default_chain(_reader(terminating=True))
    with pytest.raises(
        Forbidden, match="unable to create new content in namespace team because it is being terminated"
    ):
        await chain.admit(_create(CONFIGMAPS, {"metadata": {"name": "c"}}))
    await chain.admit(_create(EVENTS, {"metadata": {"name": "e"}}))


async def test_system_namespaces_cannot_be_deleted() -> None:
    chain = default_chain(_reader())
    with pytest.raises(Forbidden, match='namespaces "kube-system" is forbidden: this namespace may not be deleted'):
        await chain.admit(FakeAttributes("DELETE", NAMESPACES, None, "kube-system"))
    await chain.admit(FakeAttributes("DELETE", NAMESPACES, None, "team"))


async def test_pods_get_the_default_service_account_and_its_token_volume() -> None:
    pod = _pod()
    await default_chain(_reader()).admit(_create(PODS, pod))
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    (volume,) = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    sources = volume["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
    ]


async def test_missing_service_account_is_forbidden_unless_not_required() -> None:
    pod = _pod()
    pod["spec"]["serviceAccountName"] = "ghost"
    with pytest.raises(Forbidden, match='serviceaccount "ghost" not found'):
        await default_chain(_reader()).admit(_create(PODS, pod))
    await ServiceAccountAdmission(_reader(), require_account=False).admit(_create(PODS, pod))
    assert pod["spec"]["volumes"]


async def test_automount_false_skips_the_token() -> None:
    pod = _pod()
    pod["spec"]["automountServiceAccountToken"] = False
    await default_chain(_reader()).admit(_create(PODS, pod))
    assert "volumes" not in pod["spec"]


def _limit_range(**limit: Any) -> dict[str, Any]:
    return {"metadata": {"name": "lr", "namespace": "team"}, "spec": {"limits": [{"type": "Container", **limit}]}}


async def test_limit_ranger_fills_defaults() -> None:
    reader = _reader()
    reader.add(LIMITRANGES, _limit_range(default={"cpu": "500m", "memory": "128Mi"}, defaultRequest={"cpu": "100m"}))
    pod = _pod()
    await default_chain(reader).admit(_create(PODS, pod))
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "128Mi"},
        "requests": {"cpu": "100m", "memory": "128Mi"},
    }


async def test_limit_ranger_rejects_limits_above_max() -> None:
    reader = _reader()
    reader.add(LIMITRANGES, _limit_range(max={"cpu": "1"}))
    with pytest.raises(Forbidden, match="maximum cpu usage per Container is 1, but limit is 2"):
        await default_chain(reader).admit(_create(PODS, _pod(limits={"cpu": "2"})))


def _quota(**hard: str) -> dict[str, Any]:
    return {"metadata": {"name": "q", "namespace": "team"}, "spec": {"hard": hard}}


async def test_quota_counts_pods_and_reports_like_kubernetes() -> None:
    reader = _reader()
    reader.add(RESOURCEQUOTAS, _quota(pods="2"))
    chain = default_chain(reader)
    for name in ("a", "b"):
        pod = _pod(name)
        await chain.admit(_create(PODS, pod))
        reader.add(PODS, pod)
    with pytest.raises(Forbidden) as err:
        await chain.admit(_create(PODS, _pod("c")))
    assert err.value.message == (
        'pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
    )
    done = _pod("d")
    done["status"] = {"phase": "Succeeded"}
    reader.add(PODS, done)  # finished pods no longer count
    reader.add(PODS, {**_pod("a"), "status": {"phase": "Failed"}})
    await chain.admit(_create(PODS, _pod("e")))


async def test_quota_on_compute_requires_requests_and_sums_them() -> None:
    reader = _reader()
    reader.add(RESOURCEQUOTAS, _quota(**{"requests.cpu": "1", "requests.memory": "1Gi"}))
    chain = default_chain(reader)
    with pytest.raises(Forbidden, match=r"failed quota: q: must specify requests\.cpu,requests\.memory"):
        await chain.admit(_create(PODS, _pod()))
    reader.add(PODS, _pod("big", requests={"cpu": "800m", "memory": "512Mi"}))
    with pytest.raises(
        Forbidden, match=r"requested: requests.cpu=300m, used: requests.cpu=800m, limited: requests.cpu=1"
    ):
        await chain.admit(_create(PODS, _pod("more", requests={"cpu": "300m", "memory": "1Mi"})))
    await chain.admit(_create(PODS, _pod("fits", requests={"cpu": "200m", "memory": "1Mi"})))


async def test_quota_counts_services_and_node_ports() -> None:
    reader = _reader()
    reader.add(RESOURCEQUOTAS, _quota(**{"services.nodeports": "1"}))
    chain = default_chain(reader)
    svc = {
        "metadata": {"name": "s", "namespace": "team"},
        "spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]},
    }
    with pytest.raises(Forbidden, match=r"services\.nodeports=2"):
        await chain.admit(_create(SERVICES, svc))
    cluster_ip = {"metadata": {"name": "c", "namespace": "team"}, "spec": {"ports": [{"port": 1}]}}
    await chain.admit(_create(SERVICES, cluster_ip))


async def test_concurrent_creates_cannot_race_past_a_quota_until_reservations_expire() -> None:
    import asyncio

    from controlplane.admission import RESERVATION_SECONDS, ResourceQuotaAdmission

    reader = _reader()
    reader.add(RESOURCEQUOTAS, _quota(pods="2"))
    now = [0.0]
    plugin = ResourceQuotaAdmission(reader, clock=lambda: now[0])
    # None of the admitted pods reach the reader: the writes are still in flight.
    results = await asyncio.gather(
        *(plugin.admit(_create(PODS, _pod(f"p{i}"))) for i in range(5)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 2
    assert all(isinstance(r, Forbidden) for r in results if r is not None)

    reader.add(PODS, _pod("p0"))  # one write lands: counted once, from the reader
    with pytest.raises(Forbidden, match="used: pods=2"):
        await plugin.admit(_create(PODS, _pod("p9")))
    now[0] += RESERVATION_SECONDS + 1  # the other admitted write never landed
    await plugin.admit(_create(PODS, _pod("p10")))
    dry = _create(PODS, _pod("p11"))
    dry.dry_run = True
    with pytest.raises(Forbidden):
        await plugin.admit(dry)


async def test_pods_inherit_the_service_accounts_image_pull_secrets() -> None:
    reader = _reader()
    reader.add(
        SERVICEACCOUNTS, {"metadata": {"name": "puller", "namespace": "team"}, "imagePullSecrets": [{"name": "reg"}]}
    )
    pod = _pod()
    pod["spec"]["serviceAccountName"] = "puller"
    await default_chain(reader).admit(_create(PODS, pod))
    assert pod["spec"]["imagePullSecrets"] == [{"name": "reg"}]
