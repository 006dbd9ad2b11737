"""Default RBAC objects at server start: those annotated autoupdate=true are reset to this version's
rules (a narrowed role reaches an old data dir), unless the live object opted out with "false"; a
start with nothing to change writes nothing."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controlplane import auth
from controlplane.apiserver.bootstrap import ensure_cluster_objects
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.policy import CacheReader, ClusterPolicy
from controlplane.apiserver.registry import Registry
from controlplane.resources import CLUSTERROLEBINDINGS, CLUSTERROLES
from controlplane.storage.memory import MemoryBackend

WIDE = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]


@pytest.fixture
async def reg() -> AsyncIterator[Registry]:
    backend = MemoryBackend()
    await backend.start()
    cache = WatchCache(backend)
    await cache.start()
    yield Registry(backend, cache, policy=ClusterPolicy(CacheReader(cache), require_service_account=False))
    await cache.stop()
    await backend.close()


def _default(kind: str, name: str) -> dict[str, Any]:
    return next(o for o in auth.default_objects() if o["kind"] == kind and o["metadata"]["name"] == name)


async def _start(reg: Registry) -> None:
    await ensure_cluster_objects(reg, address="127.0.0.1", port=6443, extra=auth.default_objects())


async def test_a_wider_old_default_role_is_narrowed_at_start(reg: Registry) -> None:
    old = copy.deepcopy(_default("ClusterRole", "system:node"))
    old["rules"] = WIDE
    await reg.create(CLUSTERROLES, None, old)
    binding = copy.deepcopy(_default("ClusterRoleBinding", "system:node"))
    binding["subjects"].append({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "everyone"})
    await reg.create(CLUSTERROLEBINDINGS, None, binding)
    await _start(reg)
    assert (
        reg.get_entry(CLUSTERROLES, None, "system:node").obj["rules"] == _default("ClusterRole", "system:node")["rules"]
    )
    subjects = reg.get_entry(CLUSTERROLEBINDINGS, None, "system:node").obj["subjects"]
    assert {s["name"] for s in subjects} == {"system:nodes", auth.NODE_BOOTSTRAP_GROUP}


async def test_a_default_role_the_admin_opted_out_of_autoupdate_is_kept(reg: Registry) -> None:
    mine = copy.deepcopy(_default("ClusterRole", "view"))
    mine["rules"] = WIDE
    mine["metadata"]["annotations"][auth.AUTOUPDATE] = "false"
    await reg.create(CLUSTERROLES, None, mine)
    await _start(reg)
    assert reg.get_entry(CLUSTERROLES, None, "view").obj["rules"] == WIDE


async def test_a_second_start_rewrites_no_default_object(reg: Registry) -> None:
    await _start(reg)
    before = reg.cache.revision
    await _start(reg)
    assert reg.cache.revision == before
