"""Type-confused request bodies (lists for objects, numbers for lists, …) on every kind, through the
full policy (defaults, validation, admission): each is accepted or answered with an ApiError (a 4xx
Status) — never an unexpected exception (a 500)."""

from __future__ import annotations

import copy
import functools
import random
from typing import Any

from controlplane.apiserver.bootstrap import ensure_cluster_objects
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.errors import ApiError
from controlplane.apiserver.policy import CacheReader, ClusterPolicy
from controlplane.apiserver.registry import DeleteOptions, Registry
from controlplane.patch import json_merge
from controlplane.resources import ALL_RESOURCES
from controlplane.storage.memory import MemoryBackend

WEIRD: list[Any] = [None, 1, -1, "x", "", [], {}, [1], ["a"], {"a": 1}, True, 1.5, [{}], [None], {"name": 3}]
BASE: dict[str, Any] = {
    "metadata": {"name": "o", "labels": {"a": "b"}, "finalizers": ["x/y"]},
    "spec": {
        "replicas": 2,
        "type": "NodePort",
        "ports": [{"port": 80, "protocol": "TCP"}],
        "selector": {"matchLabels": {"a": "b"}},
        "nodeName": "n1",
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        "containers": [{"name": "c", "image": "i", "env": [{"name": "a", "value": "b"}]}],
    },
    "data": {"a": "b"},
    "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
    "subjects": [{"kind": "User", "name": "x"}],
    "roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": "rbac.authorization.k8s.io"},
    "endpoints": [{"addresses": ["1.2.3.4"]}],
    "addressType": "IPv4",
    "status": {"phase": "Running"},
}


def _merge(obj: dict[str, Any], *, patch: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = json_merge(obj, patch)
    return merged


def mutate(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            r = rng.random()
            if r < 0.15:
                out[k] = rng.choice(WEIRD)
            elif r > 0.05:
                out[k] = mutate(rng, v)
        return out
    if isinstance(value, list):
        return [mutate(rng, v) for v in value]
    return value


async def test_type_confused_bodies_get_api_errors_not_crashes() -> None:
    backend = MemoryBackend()
    await backend.start()
    cache = WatchCache(backend)
    await cache.start()
    reg = Registry(backend, cache, policy=ClusterPolicy(CacheReader(cache), require_service_account=False))
    await ensure_cluster_objects(reg, address="127.0.0.1", port=6443)
    rng = random.Random(7)
    crashes = []
    for i in range(600):
        res = rng.choice(ALL_RESOURCES)
        ns = "default" if res.namespaced else None
        name = f"o{i % 5}"
        body = mutate(rng, copy.deepcopy(BASE))
        if isinstance(body.get("metadata"), dict):
            body["metadata"]["name"] = name
        patch = mutate(rng, copy.deepcopy(BASE))
        try:
            step = i % 4
            if step == 0:
                await reg.create(res, ns, body)
            elif step == 1:
                await reg.update(res, ns, name, body)
            elif step == 2:
                await reg.patch(res, ns, name, functools.partial(_merge, patch=patch))
            else:
                await reg.delete(res, ns, name, DeleteOptions(grace_period_seconds=0))
        except ApiError:
            continue
        except Exception as err:
            crashes.append(f"{res.kind} step {i % 4}: {type(err).__name__}: {err}")
    await cache.stop()
    await backend.close()
    assert crashes == []
