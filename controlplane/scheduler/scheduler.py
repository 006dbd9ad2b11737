"""The scheduler loop: pending pods (no `spec.nodeName`) → filter/score over the informer-fed
`ClusterState` → POST `pods/<name>/binding`. A pod that fits nowhere gets `PodScheduled=False`
(reason `Unschedulable`) and a `FailedScheduling` event, and is retried whenever a node or a bound
pod changes (and every `retry_interval` as a safety net)."""

from __future__ import annotations

import logging
from typing import Any

from controlplane.client import ApiError, NotFound, object_key
from controlplane.controllers.base import Context, Controller, Obj, is_deleting
from controlplane.controllers.timeutil import rfc3339
from controlplane.resources import NODES, PODS
from controlplane.scheduler.core import ClusterState
from controlplane.scheduler.types import node_info, pod_info

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"
TERMINAL_PHASES = ("Succeeded", "Failed")


def is_pending(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (
        not spec.get("nodeName")
        and not is_deleting(pod)
        and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
        and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
    )


def with_condition(conditions: list[dict[str, Any]], cond: dict[str, Any]) -> list[dict[str, Any]]:
    """`conditions` with the one of the same type replaced (lastTransitionTime kept if status is unchanged)."""
    out: list[dict[str, Any]] = []
    for c in conditions:
        if c.get("type") == cond["type"]:
            if c.get("status") == cond.get("status") and c.get("lastTransitionTime"):
                cond = {**cond, "lastTransitionTime": c["lastTransitionTime"]}
            continue
        out.append(c)
    return [*out, cond]


class Scheduler(Controller):
    name = "scheduler"
    retry_interval = 30.0

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.state = ClusterState()
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_changed, lambda _o, n: self._node_changed(n), self._node_deleted)

    # -- cache bookkeeping (derived from the informers; rebuilt from scratch on every start) ------

    def _pod_added(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES:
            self.state.add_pod(node, pod_info(pod))
        elif node:
            self.state.remove_pod(object_key(pod))
        elif is_pending(pod):
            self.queue.add(object_key(pod))

    def _pod_updated(self, _old: Obj, new: Obj) -> None:
        self._pod_added(new)
        if (new.get("status") or {}).get("phase") in TERMINAL_PHASES:
            self._retry_pending()

    def _pod_deleted(self, pod: Obj) -> None:
        self.state.remove_pod(object_key(pod))
        self._retry_pending()

    def _node_changed(self, node: Obj) -> None:
        self.state.set_node(node_info(node))
        self._retry_pending()

    def _node_deleted(self, node: Obj) -> None:
        self.state.remove_node(str((node.get("metadata") or {}).get("name")))

    def _retry_pending(self) -> None:
        for pod in self.pods.list():
            if is_pending(pod) and object_key(pod) not in self.state.assigned:
                self.queue.add(object_key(pod))

    # -- reconcile -------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or not is_pending(pod) or key in self.state.assigned:
            return None
        info = pod_info(pod)
        result = self.state.schedule(info)
        meta = pod["metadata"]
        if result.node is None:
            await self._mark_unschedulable(pod, result.message(len(self.state.nodes)))
            return self.retry_interval
        self.state.add_pod(result.node, info)  # assume, so the next pod sees this one's requests
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": result.node},
        }
        try:
            await self.client.create(PODS, binding, meta["namespace"], subresource="binding", name=meta["name"])
        except NotFound:
            self.state.remove_pod(key)
            return None
        except ApiError:
            self.state.remove_pod(key)
            raise
        await self.events.record(
            pod, "Normal", "Scheduled", f"Successfully assigned {key} to {result.node}", now=self.ctx.now()
        )
        return None

    async def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        conditions = list((pod.get("status") or {}).get("conditions") or [])
        current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if current and current.get("status") == "False" and current.get("message") == message:
            return  # already says so; writing again would only wake us up again
        cond = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(self.ctx.now()),
        }
        meta = pod["metadata"]
        await self.client.patch(
            PODS,
            meta["name"],
            {"status": {"conditions": with_condition(conditions, cond)}},
            meta["namespace"],
            subresource="status",
        )
        await self.events.record(pod, "Warning", "FailedScheduling", message, now=self.ctx.now())
