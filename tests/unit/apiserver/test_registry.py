"""REST semantics of the registry over the memory store: metadata bookkeeping, optimistic
concurrency, subresource isolation, finalizers and graceful deletion, Service allocation."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.errors import AlreadyExists, Conflict, Invalid, NotFound
from controlplane.apiserver.registry import DeleteOptions, Registry
from controlplane.resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS, SERVICES
from controlplane.storage.memory import MemoryBackend


@pytest.fixture
async def reg() -> AsyncIterator[Registry]:
    backend = MemoryBackend()
    await backend.start()
    cache = WatchCache(backend)
    await cache.start()
    yield Registry(backend, cache, service_cidr="10.96.0.0/29")
    await cache.stop()
    await backend.close()


def cm(name: str = "c", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": {"k": "v"}}


def deployment(replicas: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": "d"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}}},
        "status": {"replicas": 99},
    }


async def test_create_fills_uid_timestamp_generation_and_resource_version(reg: Registry) -> None:
    out = await reg.create(CONFIGMAPS, "default", cm(resourceVersion="77", uid="mine"))
    meta = out["metadata"]
    assert meta["uid"] != "mine"
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert meta["namespace"] == "default"
    assert int(meta["resourceVersion"]) == reg.cache.revision


async def test_create_with_generate_name_makes_distinct_names(reg: Registry) -> None:
    names = {(await reg.create(CONFIGMAPS, "default", cm("", generateName="x-")))["metadata"]["name"] for _ in range(5)}
    assert len(names) == 5
    assert all(n.startswith("x-") and len(n) == 7 for n in names)


async def test_create_of_existing_name_is_409_already_exists(reg: Registry) -> None:
    await reg.create(CONFIGMAPS, "default", cm())
    with pytest.raises(AlreadyExists):
        await reg.create(CONFIGMAPS, "default", cm())


async def test_update_with_stale_resource_version_is_409_conflict(reg: Registry) -> None:
    first = await reg.create(CONFIGMAPS, "default", cm())
    stale = copy.deepcopy(first)
    first["data"] = {"k": "2"}
    await reg.update(CONFIGMAPS, "default", "c", first)
    stale["data"] = {"k": "3"}
    with pytest.raises(Conflict):
        await reg.update(CONFIGMAPS, "default", "c", stale)


async def test_generation_counts_spec_changes_only(reg: Registry) -> None:
    await reg.create(DEPLOYMENTS, "default", deployment())
    out = await reg.patch(
        DEPLOYMENTS, "default", "d", lambda o: {**o, "metadata": {**o["metadata"], "labels": {"x": "y"}}}
    )
    assert out["metadata"]["generation"] == 1
    out = await reg.patch(DEPLOYMENTS, "default", "d", lambda o: {**o, "spec": {**o["spec"], "replicas": 3}})
    assert out["metadata"]["generation"] == 2


async def test_status_is_reset_on_create_and_only_written_through_the_status_subresource(reg: Registry) -> None:
    created = await reg.create(DEPLOYMENTS, "default", deployment())
    assert created["status"] == {}
    changed = copy.deepcopy(created)
    changed["status"] = {"replicas": 5}
    changed["spec"]["replicas"] = 7
    out = await reg.update(DEPLOYMENTS, "default", "d", changed)
    assert out["status"] == {}
    assert out["spec"]["replicas"] == 7
    changed["metadata"]["resourceVersion"] = out["metadata"]["resourceVersion"]
    out = await reg.update(DEPLOYMENTS, "default", "d", changed, subresource="status")
    assert out["status"] == {"replicas": 5}
    assert out["spec"]["replicas"] == 7


async def test_concurrent_patches_all_apply(reg: Registry) -> None:
    await reg.create(CONFIGMAPS, "default", cm())

    def add(i: int) -> Any:
        return lambda o: {**o, "data": {**o["data"], f"k{i}": "x"}}

    await asyncio.gather(*(reg.patch(CONFIGMAPS, "default", "c", add(i)) for i in range(10)))
    assert len(reg.get_entry(CONFIGMAPS, "default", "c").obj["data"]) == 11


async def test_finalizers_hold_deletion_until_removed(reg: Registry) -> None:
    await reg.create(CONFIGMAPS, "default", cm(finalizers=["example.com/hold"]))
    out = await reg.delete(CONFIGMAPS, "default", "c", DeleteOptions())
    assert out["metadata"]["deletionTimestamp"]
    assert reg.get_entry(CONFIGMAPS, "default", "c")
    await reg.patch(CONFIGMAPS, "default", "c", lambda o: {**o, "metadata": {**o["metadata"], "finalizers": []}})
    with pytest.raises(NotFound):
        reg.get_entry(CONFIGMAPS, "default", "c")


async def test_bound_pod_terminates_gracefully_until_deleted_with_grace_zero(reg: Registry) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}
    await reg.create(PODS, "default", pod)
    out = await reg.delete(PODS, "default", "p", DeleteOptions())
    assert out["metadata"]["deletionGracePeriodSeconds"] == 30
    # the node updates status while the pod terminates: the pod must stay
    await reg.patch(PODS, "default", "p", lambda o: o, subresource="status")
    assert reg.get_entry(PODS, "default", "p")
    await reg.delete(PODS, "default", "p", DeleteOptions(grace_period_seconds=0))
    with pytest.raises(NotFound):
        reg.get_entry(PODS, "default", "p")


async def test_unbound_pod_is_deleted_at_once(reg: Registry) -> None:
    await reg.create(PODS, "default", {"metadata": {"name": "p"}, "spec": {"containers": []}})
    await reg.delete(PODS, "default", "p", DeleteOptions())
    with pytest.raises(NotFound):
        reg.get_entry(PODS, "default", "p")


async def test_namespace_deletion_waits_for_its_finalizer(reg: Registry) -> None:
    await reg.create(NAMESPACES, None, {"metadata": {"name": "ns1"}})
    out = await reg.delete(NAMESPACES, None, "ns1", DeleteOptions())
    assert out["status"]["phase"] == "Terminating"
    live = reg.get_entry(NAMESPACES, None, "ns1").obj
    await reg.update(NAMESPACES, None, "ns1", {**live, "spec": {"finalizers": []}}, subresource="finalize")
    with pytest.raises(NotFound):
        reg.get_entry(NAMESPACES, None, "ns1")


def svc(name: str, ip: str | None = None, svc_type: str = "ClusterIP") -> dict[str, Any]:
    spec: dict[str, Any] = {"type": svc_type, "ports": [{"port": 80}]}
    if ip:
        spec["clusterIP"] = ip
    return {"metadata": {"name": name}, "spec": spec}


async def test_cluster_ips_are_unique_under_concurrency_and_released_on_delete(reg: Registry) -> None:
    # a /29 has 6 usable addresses, one reserved for the kubernetes Service: 5 to hand out
    created = await asyncio.gather(*(reg.create(SERVICES, "default", svc(f"s{i}")) for i in range(5)))
    ips = {s["spec"]["clusterIP"] for s in created}
    assert len(ips) == 5
    with pytest.raises(Invalid):
        await reg.create(SERVICES, "default", svc("full"))
    await reg.delete(SERVICES, "default", "s0", DeleteOptions())
    again = await reg.create(SERVICES, "default", svc("again"))
    assert again["spec"]["clusterIP"] == created[0]["spec"]["clusterIP"]


async def test_requested_cluster_ip_that_is_taken_is_rejected(reg: Registry) -> None:
    first = await reg.create(SERVICES, "default", svc("a"))
    with pytest.raises(Invalid):
        await reg.create(SERVICES, "default", svc("b", ip=first["spec"]["clusterIP"]))


async def test_node_ports_are_allocated_kept_on_update_and_released(reg: Registry) -> None:
    a = await reg.create(SERVICES, "default", svc("a", svc_type="NodePort"))
    port = a["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    a["spec"]["ports"][0].pop("nodePort")
    updated = await reg.update(SERVICES, "default", "a", a)
    assert updated["spec"]["ports"][0]["nodePort"] == port
    assert updated["spec"]["clusterIP"] == a["spec"]["clusterIP"]
    await reg.delete(SERVICES, "default", "a", DeleteOptions())
    assert port not in reg.node_ports._range.used


async def test_watch_from_a_version_older_than_the_cache_window_is_gone() -> None:
    from controlplane.apiserver.errors import Gone

    backend = MemoryBackend()
    await backend.start()
    cache = WatchCache(backend, window=3)
    await cache.start()
    reg = Registry(backend, cache)
    first = await reg.create(CONFIGMAPS, "default", cm("a"))
    for i in range(5):
        await reg.create(CONFIGMAPS, "default", cm(f"b{i}"))
    with pytest.raises(Gone):
        cache.watch("/registry/core/configmaps/", int(first["metadata"]["resourceVersion"]))
    recent = cache.watch("/registry/core/configmaps/", cache.revision - 1)
    assert recent.queue.qsize() == 1
    await cache.stop()
    await backend.close()


def test_watch_translation_follows_objects_into_and_out_of_a_selection() -> None:
    from controlplane.apiserver.cache import CacheEvent, Entry
    from controlplane.apiserver.watch import translate

    def entry(team: str) -> Entry:
        return Entry("/k", {"metadata": {"labels": {"team": team}}}, b"{}", 1)

    def is_a(obj: dict[str, Any]) -> bool:
        return bool(obj["metadata"]["labels"]["team"] == "a")

    assert translate(CacheEvent("MODIFIED", entry("a"), entry("b")), is_a) == "ADDED"
    assert translate(CacheEvent("MODIFIED", entry("b"), entry("a")), is_a) == "DELETED"
    assert translate(CacheEvent("MODIFIED", entry("b"), entry("b")), is_a) is None
    assert translate(CacheEvent("MODIFIED", entry("a"), entry("a")), is_a) == "MODIFIED"
    assert translate(CacheEvent("DELETED", entry("b"), entry("b")), is_a) is None
    assert translate(CacheEvent("DELETED", entry("a"), None), None) == "DELETED"


async def test_bootstrap_recreates_the_kubernetes_service_and_moves_its_endpoints(reg: Registry) -> None:
    from controlplane.apiserver.bootstrap import ensure_cluster_objects
    from controlplane.resources import ENDPOINTS

    await ensure_cluster_objects(reg, address="127.0.0.1", port=6443)
    await reg.delete(SERVICES, "default", "kubernetes", DeleteOptions())
    await ensure_cluster_objects(reg, address="192.0.2.7", port=7443)
    svc = reg.get_entry(SERVICES, "default", "kubernetes").obj
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    subsets = reg.get_entry(ENDPOINTS, "default", "kubernetes").obj["subsets"]
    assert subsets[0]["addresses"] == [{"ip": "192.0.2.7"}]
    assert subsets[0]["ports"][0]["port"] == 7443


async def test_cache_recovers_when_the_store_watch_fails() -> None:
    from controlplane.storage import StoreEvent

    class FlakyWatch(MemoryBackend):
        failures = 1

        def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[StoreEvent]:
            if self.failures:
                self.failures -= 1
                return self._broken()
            return super().watch(prefix, start_revision=start_revision)

        async def _broken(self) -> AsyncIterator[StoreEvent]:
            raise RuntimeError("connection to the store lost")
            yield  # pragma: no cover - makes this an async generator

    backend = FlakyWatch()
    await backend.start()
    cache = WatchCache(backend)
    await cache.start()
    rev = await backend.create("/registry/core/configmaps/default/x", b'{"metadata": {"name": "x"}}')
    started = asyncio.get_running_loop().time()
    await cache.wait_for(rev, timeout=5)
    assert cache.get("/registry/core/configmaps/default/x") is not None
    assert asyncio.get_running_loop().time() - started < 3  # woken by the relist, not by the timeout
    await cache.stop()
    await backend.close()


async def _race_first_store_write(reg: Registry, method: str) -> list[int]:
    """Make the store's first `method` call lose a race: a status write lands just before it."""
    real = getattr(reg.backend, method)
    write = reg.backend.update
    raced: list[int] = []

    async def racing(key: str, *args: Any, **kwargs: Any) -> int:
        if not raced:
            got = await reg.backend.get(key)
            assert got.kv is not None
            raced.append(await write(key, got.kv.value, expected_revision=got.kv.mod_revision))
        result: int = await real(key, *args, **kwargs)
        return result

    setattr(reg.backend, method, racing)
    return raced


async def test_delete_racing_a_status_write_is_retried_not_409(reg: Registry) -> None:
    await reg.create(DEPLOYMENTS, "default", deployment())
    raced = await _race_first_store_write(reg, "delete")
    await reg.delete(DEPLOYMENTS, "default", "d", DeleteOptions())
    assert raced, "the race was not staged"
    with pytest.raises(NotFound):
        reg.get_entry(DEPLOYMENTS, "default", "d")


async def test_graceful_delete_racing_a_write_is_retried_not_409(reg: Registry) -> None:
    await reg.create(CONFIGMAPS, "default", cm(finalizers=["example.com/keep"]))
    raced = await _race_first_store_write(reg, "update")
    out = await reg.delete(CONFIGMAPS, "default", "c", DeleteOptions())
    assert raced
    assert out["metadata"]["deletionTimestamp"]


async def test_delete_with_a_resource_version_precondition_still_conflicts_on_a_race(reg: Registry) -> None:
    created = await reg.create(DEPLOYMENTS, "default", deployment())
    await _race_first_store_write(reg, "delete")
    with pytest.raises(Conflict):
        await reg.delete(
            DEPLOYMENTS, "default", "d", DeleteOptions(precondition_rv=created["metadata"]["resourceVersion"])
        )


async def test_delete_answers_within_the_cache_wait_bound_when_the_cache_stalls(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controlplane.apiserver import registry as registry_module

    monkeypatch.setattr(registry_module, "_CACHE_WAIT", 0.2)
    await reg.create(CONFIGMAPS, "default", cm())
    await reg.cache.stop()  # the cache no longer follows the store: it never shows the delete
    out = await asyncio.wait_for(reg.delete(CONFIGMAPS, "default", "c", DeleteOptions()), 2.0)
    assert out["metadata"]["name"] == "c"
    assert (await reg.backend.get("/registry/configmaps/default/c")).kv is None
