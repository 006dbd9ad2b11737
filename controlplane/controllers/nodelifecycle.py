"""Node lifecycle: heartbeats (the node's Lease in `kube-node-lease`, or its Ready condition's
lastHeartbeatTime) keep a node alive; a node silent for `node_monitor_grace` gets Ready=Unknown and
the `node.kubernetes.io/unreachable` taints; a NotReady node gets `node.kubernetes.io/not-ready`.
Pods on a node with a NoExecute taint are evicted once their toleration runs out (pods without a
toleration for it get `default_toleration_seconds`, as the DefaultTolerationSeconds admission gives).

Silence is measured with this process's clock from the moment it *observed* a heartbeat change, so
clock skew between nodes and the control plane does not matter (client-go's node controller does the same).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from controlplane.client import NotFound
from controlplane.controllers.base import Context, Controller, Obj
from controlplane.controllers.podutil import condition
from controlplane.controllers.timeutil import parse_time, rfc3339
from controlplane.resources import LEASES, NODES, PODS
from controlplane.scheduler.types import Taint, toleration_from

LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
LIFECYCLE_TAINT_KEYS = (UNREACHABLE, NOT_READY)


@dataclass
class Observation:
    heartbeat: tuple[str | None, str | None]
    seen_at: float  # monotonic


def desired_taints(current: list[Obj], ready_status: str, now: float) -> list[Obj]:
    """The node's taints with the lifecycle ones matching its Ready status (others untouched;
    existing lifecycle taints keep their timeAdded)."""
    want_key = {"True": None, "False": NOT_READY}.get(ready_status, UNREACHABLE)
    keep = [t for t in current if t.get("key") not in LIFECYCLE_TAINT_KEYS]
    if want_key is None:
        return keep
    existing = {(t.get("key"), t.get("effect")): t for t in current}
    for effect in ("NoSchedule", "NoExecute"):
        t = existing.get((want_key, effect))
        keep.append(t if t is not None else {"key": want_key, "effect": effect, "timeAdded": rfc3339(now)})
    return keep


def eviction_delay(pod: Obj, taints: list[Obj], now: float, default_seconds: int) -> float | None:
    """Seconds until `pod` must be evicted because of the NoExecute `taints` (0 = now); None = never."""
    tolerations = [toleration_from(t) for t in (pod.get("spec") or {}).get("tolerations") or ()]
    delay: float | None = None
    for t in taints:
        if t.get("effect") != "NoExecute":
            continue
        taint = Taint(str(t.get("key") or ""), str(t.get("value") or ""), "NoExecute")
        added = parse_time(t.get("timeAdded")) or now
        matching = [tol for tol in tolerations if tol.tolerates(taint)]
        if not matching:
            if taint.key not in LIFECYCLE_TAINT_KEYS:
                return 0.0
            seconds: float | None = float(default_seconds)
        elif any(tol.seconds is None for tol in matching):
            seconds = None
        else:
            seconds = float(min(tol.seconds or 0 for tol in matching))
        if seconds is None:
            continue
        remaining = max(added + seconds - now, 0.0)
        delay = remaining if delay is None else min(delay, remaining)
    return delay


class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.nodes = self.watch_own(NODES)
        self.leases = self.watch_related(LEASES, self._node_of_lease)
        self.pods = self.watch_related(PODS, self._node_of_pod)
        self.observed: dict[str, Observation] = {}

    @staticmethod
    def _node_of_lease(lease: Obj) -> list[str]:
        meta = lease.get("metadata") or {}
        return [str(meta.get("name"))] if meta.get("namespace") == LEASE_NAMESPACE else []

    @staticmethod
    def _node_of_pod(pod: Obj) -> list[str]:
        node = (pod.get("spec") or {}).get("nodeName")
        return [str(node)] if node else []

    def _silence(self, name: str, node: Obj) -> float:
        """Seconds since a heartbeat change was last observed (0 on the first observation)."""
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        ready = condition(node, "Ready") or {}
        beat = (str(renew) if renew else None, ready.get("lastHeartbeatTime"))
        mono = time.monotonic()
        obs = self.observed.get(name)
        if obs is None or obs.heartbeat != beat:
            self.observed[name] = Observation(beat, mono)
            return 0.0
        return mono - obs.seen_at

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            self.observed.pop(key, None)
            return None
        grace = self.ctx.config.node_monitor_grace
        now = self.ctx.now()
        silence = self._silence(key, node)
        ready = condition(node, "Ready")
        if silence > grace and (ready or {}).get("status") != "Unknown":
            await self._mark_unknown(node, now)
            return 0.5  # continue with taints once the status write is visible
        status = (ready or {}).get("status", "Unknown")
        taints = list((node.get("spec") or {}).get("taints") or [])
        want = desired_taints(taints, status, now)
        if want != taints:
            await self.client.patch(NODES, key, {"spec": {"taints": want}})
            return None  # the node update re-queues us with the new taints
        next_check = max(grace - silence, 0.0) + 0.1 if status != "Unknown" else self.ctx.config.node_monitor_period
        if status == "Unknown":
            await self._mark_pods_not_ready(key, now)
        evict_in = await self._evict(key, want, now)
        return min(next_check, evict_in) if evict_in is not None else next_check

    async def _mark_unknown(self, node: Obj, now: float) -> None:
        stamp = rfc3339(now)
        conds = []
        for cur in (node.get("status") or {}).get("conditions") or []:
            c = cur
            if c.get("status") != "Unknown":
                c = {
                    **c,
                    "status": "Unknown",
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                    "lastTransitionTime": stamp,
                }
            conds.append(c)
        if not any(c.get("type") == "Ready" for c in conds):
            conds.append(
                {
                    "type": "Ready",
                    "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastTransitionTime": stamp,
                }
            )
        await self.client.patch(
            NODES, node["metadata"]["name"], {"status": {"conditions": conds}}, subresource="status"
        )
        await self.events.record(
            node, "Normal", "NodeNotReady", f"Node {node['metadata']['name']} status is now: NodeNotReady", now=now
        )

    async def _mark_pods_not_ready(self, node_name: str, now: float) -> None:
        """Pods on a lost node stop counting as Ready at once, so Services drop them long before
        they are evicted."""
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            conds = list((pod.get("status") or {}).get("conditions") or [])
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                continue
            conds = [
                {**c, "status": "False", "reason": "NodeLost", "lastTransitionTime": rfc3339(now)}
                if c.get("type") in ("Ready", "ContainersReady")
                else c
                for c in conds
            ]
            meta = pod["metadata"]
            with contextlib.suppress(NotFound):
                await self.client.patch(
                    PODS, meta["name"], {"status": {"conditions": conds}}, meta["namespace"], subresource="status"
                )

    async def _evict(self, node_name: str, taints: list[Obj], now: float) -> float | None:
        """Deletes pods whose toleration ran out; returns when the next one is due."""
        if not any(t.get("effect") == "NoExecute" for t in taints):
            return None
        soonest: float | None = None
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") != node_name or (pod.get("metadata") or {}).get(
                "deletionTimestamp"
            ):
                continue
            delay = eviction_delay(pod, taints, now, self.ctx.config.default_toleration_seconds)
            if delay is None:
                continue
            if delay <= 0:
                meta = pod["metadata"]
                with contextlib.suppress(NotFound):
                    await self.client.delete(PODS, meta["name"], meta["namespace"])
                await self.events.record(
                    pod,
                    "Normal",
                    "TaintManagerEviction",
                    f"Marking for deletion Pod {meta['namespace']}/{meta['name']}",
                    now=now,
                )
            else:
                soonest = delay if soonest is None else min(soonest, delay)
        return soonest
