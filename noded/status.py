"""Pod status from what the runtime reports: container states with restart counts, phase and the four
conditions. Pure: the worker gathers the observations, this module decides what they mean."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from noded.quantity import qos_class
from noded.types import Container, ContainerState, Sandbox

RUNTIME_SCHEME = "tinykube"


def rfc3339(ns: int | float) -> str:
    """Timestamps in API objects: seconds precision, UTC, `Z`."""
    return datetime.fromtimestamp(ns / 1e9 if ns > 1e12 else ns, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Observed:
    """Everything the worker knows about one pod at one moment."""

    sandbox: Sandbox | None
    # container name → its instances, oldest attempt first
    containers: dict[str, list[Container]] = field(default_factory=dict)
    ready: dict[str, bool] = field(default_factory=dict)  # readiness probe results
    started: dict[str, bool] = field(default_factory=dict)  # startup probe results
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (reason, message)
    host_ip: str = ""
    now: float = 0.0

    def latest(self, name: str) -> Container | None:
        instances = self.containers.get(name)
        return instances[-1] if instances else None

    def previous(self, name: str) -> Container | None:
        instances = self.containers.get(name) or []
        return instances[-2] if len(instances) >= 2 else None


def _terminated(c: Container) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exitCode": c.exit_code,
        "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
        "containerID": f"{RUNTIME_SCHEME}://{c.id}",
    }
    if c.started_at:
        out["startedAt"] = rfc3339(c.started_at)
    if c.finished_at:
        out["finishedAt"] = rfc3339(c.finished_at)
    if c.message:
        out["message"] = c.message
    return out


def container_status(spec: dict[str, Any], obs: Observed, *, init: bool) -> dict[str, Any]:
    name = spec["name"]
    latest = obs.latest(name)
    status: dict[str, Any] = {
        "name": name,
        "image": spec.get("image", ""),
        "imageID": "",
        "restartCount": latest.attempt if latest else 0,
        "ready": False,
        "started": False,
        "lastState": {},
    }
    prev = obs.previous(name)
    if latest is None:
        reason, message = obs.waiting.get(name, ("PodInitializing" if init else "ContainerCreating", ""))
        status["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        return status
    status["containerID"] = f"{RUNTIME_SCHEME}://{latest.id}"
    status["imageID"] = latest.image_ref
    if name in obs.waiting:
        # The latest instance ended and the next one is not started yet (back-off, config error).
        reason, message = obs.waiting[name]
        status["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        if latest.state == ContainerState.EXITED:
            status["lastState"] = {"terminated": _terminated(latest)}
        return status
    if latest.state == ContainerState.RUNNING:
        status["state"] = {"running": {"startedAt": rfc3339(latest.started_at or latest.created_at)}}
        started = obs.started.get(name, True)
        status["started"] = started
        status["ready"] = started and obs.ready.get(name, True) if not init else False
    elif latest.state == ContainerState.EXITED:
        status["state"] = {"terminated": _terminated(latest)}
        status["ready"] = init and latest.exit_code == 0
    else:
        status["state"] = {"waiting": {"reason": "ContainerCreating"}}
    if prev is not None and prev.state == ContainerState.EXITED:
        status["lastState"] = {"terminated": _terminated(prev)}
    return status


def init_done(pod: dict[str, Any], obs: Observed) -> bool:
    for spec in (pod.get("spec") or {}).get("initContainers") or []:
        c = obs.latest(spec["name"])
        if c is None or c.state != ContainerState.EXITED or c.exit_code != 0:
            return False
    return True


def init_failed_for_good(pod: dict[str, Any], obs: Observed) -> bool:
    if (pod.get("spec") or {}).get("restartPolicy", "Always") != "Never":
        return False
    for spec in (pod.get("spec") or {}).get("initContainers") or []:
        c = obs.latest(spec["name"])
        if c is not None and c.state == ContainerState.EXITED and c.exit_code != 0:
            return True
    return False


def phase(pod: dict[str, Any], obs: Observed) -> str:
    """The kubelet's phase rules: Pending until initialized and every container has run once;
    Succeeded/Failed only when everything stopped and nothing will restart."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy", "Always")
    if init_failed_for_good(pod, obs):
        return "Failed"
    if not init_done(pod, obs):
        return "Pending"
    latest = [obs.latest(c["name"]) for c in spec.get("containers") or []]
    if any(c is None or c.state == ContainerState.CREATED for c in latest):
        return "Pending"
    if any(c is not None and c.state == ContainerState.RUNNING for c in latest):
        return "Running"
    if policy == "Always":
        return "Running"
    codes = [c.exit_code for c in latest if c is not None]
    if all(code == 0 for code in codes):
        return "Succeeded"
    return "Failed" if policy == "Never" else "Running"


def _condition(kind: str, ok: bool, previous: dict[str, dict[str, Any]], now: str, reason: str = "") -> dict[str, Any]:
    status = "True" if ok else "False"
    old = previous.get(kind)
    since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now
    out = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
    if reason and not ok:
        out["reason"] = reason
    return out


def pod_status(pod: dict[str, Any], obs: Observed) -> dict[str, Any]:
    """The whole `status` of a pod as noded reports it."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    now = rfc3339(obs.now)
    inits = [container_status(c, obs, init=True) for c in spec.get("initContainers") or []]
    apps = [container_status(c, obs, init=False) for c in spec.get("containers") or []]
    pod_phase = phase(pod, obs)
    initialized = init_done(pod, obs)
    all_ready = bool(apps) and all(c["ready"] for c in apps)
    terminal = pod_phase in ("Succeeded", "Failed")
    previous = {c["type"]: c for c in old.get("conditions") or []}
    not_ready = "PodCompleted" if terminal else "ContainersNotReady"
    conditions = [
        _condition("PodScheduled", True, previous, now),
        _condition("Initialized", initialized, previous, now, "ContainersNotInitialized"),
        _condition("ContainersReady", all_ready and not terminal, previous, now, not_ready),
        _condition("Ready", all_ready and not terminal, previous, now, not_ready),
    ]
    status: dict[str, Any] = {
        "phase": pod_phase,
        "conditions": conditions,
        "containerStatuses": apps,
        "qosClass": qos_class([*(spec.get("initContainers") or []), *(spec.get("containers") or [])]),
        "startTime": old.get("startTime") or now,
    }
    if inits:
        status["initContainerStatuses"] = inits
    if obs.host_ip:
        status["hostIP"] = obs.host_ip
        status["hostIPs"] = [{"ip": obs.host_ip}]
    ips: tuple[str, ...] = ()
    if obs.sandbox is not None:
        ips = obs.sandbox.ips
    elif old.get("podIP"):
        ips = tuple(x["ip"] for x in old.get("podIPs") or [{"ip": old["podIP"]}])
    if spec.get("hostNetwork") and obs.host_ip:
        ips = (obs.host_ip,)
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    return status
