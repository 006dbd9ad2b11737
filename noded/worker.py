"""One pod worker per pod: a level-triggered loop that looks at the pod spec and at what the runtime
reports, takes the next steps (sandbox → init containers in order → containers; restarts with
back-off; kills on failed liveness/startup probes), and reports the pod's status.

The worker never remembers what it did, only what it observed: after a noded restart a fresh worker
finds the running sandbox and containers by their labels and leaves them alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.client.errors import ApiError, NotFound
from controlplane.resources import PODS
from noded.backoff import Backoff
from noded.errors import NodedError, PodSpecError
from noded.events import EventRecorder
from noded.interfaces import ApiClient, RuntimeClient
from noded.podspec import container_config, container_mounts, resolve_env, sandbox_config
from noded.prober import PodProbes
from noded.probes import make_check
from noded.status import Observed, phase, pod_status
from noded.types import (
    LABEL_POD_UID,
    Container,
    ContainerState,
    Sandbox,
    SandboxState,
)
from noded.volumes import PodVolumes

log = logging.getLogger(__name__)

TERMINAL = ("Succeeded", "Failed")


@dataclass
class NodeContext:
    """What every worker on this node shares."""

    api: ApiClient
    runtime: RuntimeClient
    node_name: str
    volumes: PodVolumes
    events: EventRecorder
    log_root: str
    host_ip: str = ""
    backoff: Backoff = field(default_factory=Backoff)
    resync: float = 10.0  # idle re-check; the PLEG wakes workers sooner when containers change
    probe_time_scale: float = 1.0  # tests shrink probe periods
    base_env: dict[str, str] = field(default_factory=dict)
    node_allocatable: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], float] = time.time


def _restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def _grace(pod: dict[str, Any]) -> int:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    value = meta.get("deletionGracePeriodSeconds")
    if value is None:
        value = spec.get("terminationGracePeriodSeconds", 30)
    return max(0, int(value))


async def _done() -> None:
    """An already finished step, to await alongside real ones."""


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: dict[str, Any], *, static: bool = False) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.static = static
        self.deleted = False  # gone from the API (or its manifest removed): tear down, then stop
        self.done = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting: dict[str, tuple[str, str]] = {}
        self.probes = PodProbes(
            ctx.runtime, time_scale=ctx.probe_time_scale, on_change=self.wake, on_unhealthy=self._unhealthy
        )
        self._status_cache: dict[str, Container] = {}  # finished containers never change
        self._ip_cache: dict[str, tuple[str, ...]] = {}
        self._volume_paths: dict[str, str] | None = None
        self._last_status: dict[str, Any] | None = None
        self._next_wake: float | None = None

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        log.debug("pod %s: worker started", self.name)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pod-{self.uid}")

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.wake()

    def delete(self) -> None:
        self.deleted = True
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop managing the pod without touching it (noded is shutting down)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.probes.cancel()

    @property
    def name(self) -> str:
        meta = self.pod["metadata"]
        return f"{meta.get('namespace', 'default')}/{meta['name']}"

    async def _run(self) -> None:
        try:
            while True:
                self._next_wake = None
                try:
                    if await self.sync():
                        return
                except (NodedError, ApiError, OSError) as err:
                    log.warning("pod %s: sync failed: %s", self.name, err)
                    self._later(1.0)
                timeout = self.ctx.resync
                if self._next_wake is not None:
                    timeout = max(0.01, min(timeout, self._next_wake - self.ctx.clock()))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            self.probes.cancel()
            self.done.set()

    def _later(self, seconds: float) -> None:
        at = self.ctx.clock() + seconds
        self._next_wake = at if self._next_wake is None else min(self._next_wake, at)

    # -- observe -------------------------------------------------------------------------------
    async def observe(self) -> Observed:
        rt = self.ctx.runtime
        sandboxes = await rt.list_pod_sandbox({LABEL_POD_UID: self.uid})
        ready = sorted((s for s in sandboxes if s.state == SandboxState.READY), key=lambda s: (s.attempt, s.created_at))
        sandbox: Sandbox | None = ready[-1] if ready else None
        if sandbox is not None and not sandbox.ips:
            if sandbox.id not in self._ip_cache:
                self._ip_cache[sandbox.id] = (await rt.pod_sandbox_status(sandbox.id)).ips
            sandbox = Sandbox(**{**sandbox.__dict__, "ips": self._ip_cache[sandbox.id]})
        by_name: dict[str, list[Container]] = {}
        for listed in await rt.list_containers(labels={LABEL_POD_UID: self.uid}):
            c = await self._full_status(listed)
            # A container of a dead sandbox counts as exited: it is restarted in the new one.
            if (sandbox is None or c.sandbox_id != sandbox.id) and c.state != ContainerState.EXITED:
                c = Container(**{**c.__dict__, "state": ContainerState.EXITED, "reason": c.reason or "Unknown"})
            by_name.setdefault(c.name, []).append(c)
        for instances in by_name.values():
            instances.sort(key=lambda c: (c.attempt, c.created_at))
        return Observed(
            sandbox=sandbox,
            containers=by_name,
            ready=dict(self.probes.ready),
            started=dict(self.probes.started),
            waiting=dict(self._waiting),
            host_ip=self.ctx.host_ip,
            now=self.ctx.clock(),
        )

    async def _full_status(self, listed: Container) -> Container:
        cached = self._status_cache.get(listed.id)
        if cached is not None and cached.state == listed.state:
            return cached
        full = await self.ctx.runtime.container_status(listed.id)
        if not full.sandbox_id:
            full = dataclasses.replace(full, sandbox_id=listed.sandbox_id)
        self._status_cache[listed.id] = full
        return full

    # -- sync ----------------------------------------------------------------------------------
    async def sync(self) -> bool:
        """One pass; True when the worker is finished (pod torn down)."""
        pod = self.pod
        if self.deleted or pod["metadata"].get("deletionTimestamp"):
            await self.terminate()
            return True
        obs = await self.observe()
        current_phase = (pod.get("status") or {}).get("phase")
        if current_phase in TERMINAL or (phase(pod, obs) in TERMINAL and obs.containers):
            await self._finish(obs)
            return False
        # Volumes are made while the runtime builds the sandbox (its network setup is the slow part).
        volumes = self._prepare_volumes() if self._volume_paths is None else _done()
        if obs.sandbox is None:
            await asyncio.gather(self._new_sandbox(obs), volumes)
            obs = await self.observe()
        else:
            await volumes
        if obs.sandbox is None or self._volume_paths is None:
            await self._report(obs)
            return False
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        if await self._step_init(obs, policy):
            await self._step_containers(obs, policy)
        obs = await self.observe()
        self.probes.ensure((self.pod.get("spec") or {}).get("containers") or [], obs)
        obs.ready, obs.started = dict(self.probes.ready), dict(self.probes.started)  # new containers start unready
        await self._report(obs)
        if phase(pod, obs) in TERMINAL:
            await self._finish(obs)
        return False

    async def _prepare_volumes(self) -> None:
        try:
            self._volume_paths = await self.ctx.volumes.prepare(self.pod)
        except PodSpecError as err:
            self.ctx.events.emit(self.pod, "FailedMount", err.message, warning=True)
            self._later(2.0)

    async def _step_init(self, obs: Observed, policy: str) -> bool:
        """Run init containers one at a time, in order; True when all have succeeded."""
        for spec in (self.pod.get("spec") or {}).get("initContainers") or []:
            c = obs.latest(spec["name"])
            if c is None:
                await self._start(spec, "init", 0, obs)
                return False
            if c.state != ContainerState.EXITED:
                return False
            if c.exit_code == 0:
                continue
            if policy != "Never":
                await self._restart(spec, "init", c, obs)
            return False
        return True

    async def _step_containers(self, obs: Observed, policy: str) -> None:
        for spec in (self.pod.get("spec") or {}).get("containers") or []:
            c = obs.latest(spec["name"])
            if c is None:
                await self._start(spec, "app", 0, obs)
            elif c.state == ContainerState.RUNNING and c.id in self.probes.doomed:
                self.ctx.events.emit(
                    self.pod, "Killing", f"Container {c.name} failed a probe, will be restarted", container=c.name
                )
                await self.ctx.runtime.stop_container(c.id, _grace(self.pod))
                self.probes.doomed.discard(c.id)
                self.wake()
            elif c.state == ContainerState.EXITED and _restart(policy, c.exit_code):
                await self._restart(spec, "app", c, obs)

    async def _restart(self, spec: dict[str, Any], kind: str, c: Container, obs: Observed) -> None:
        key = (self.uid, spec["name"])
        now = self.ctx.clock()
        remaining = self.ctx.backoff.remaining(key, c.finished_at / 1e9, now)
        if remaining > 0:
            delay = int(self.ctx.backoff.delay(key))
            msg = f"back-off {delay}s restarting failed container={spec['name']} pod={self.pod['metadata']['name']}"
            if self._waiting.get(spec["name"], ("",))[0] != "CrashLoopBackOff":
                self.ctx.events.emit(
                    self.pod, "BackOff", "Back-off restarting failed container", warning=True, container=spec["name"]
                )
            self._waiting[spec["name"]] = ("CrashLoopBackOff", msg)
            self._later(remaining)
            return
        self.ctx.backoff.restarted(key, now)
        await self._start(spec, kind, c.attempt + 1, obs)

    async def _ensure_image(self, spec: dict[str, Any]) -> None:
        image = spec["image"]
        default = "Always" if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1] else "IfNotPresent"
        policy = spec.get("imagePullPolicy") or default
        present = await self.ctx.runtime.image_present(image)
        if present and policy != "Always":
            return
        if not present and policy == "Never":
            raise PodSpecError("ErrImageNeverPull", f"image {image!r} is not present and the pull policy is Never")
        try:
            await self.ctx.runtime.pull_image(image)
            self.ctx.events.emit(self.pod, "Pulled", f"Successfully pulled image {image!r}", container=spec["name"])
        except NodedError as err:
            if not present:
                raise PodSpecError("ErrImagePull", str(err)) from err

    async def _start(self, spec: dict[str, Any], kind: str, attempt: int, obs: Observed) -> None:
        name = spec["name"]
        assert obs.sandbox is not None
        rt = self.ctx.runtime
        try:
            await self._ensure_image(spec)
            env = await resolve_env(
                self.ctx.api,
                self._pod_with_ips(obs),
                spec,
                base=self.ctx.base_env,
                node_allocatable=self.ctx.node_allocatable,
            )
            mounts = container_mounts(spec, self._volume_paths or {})
            config = container_config(self.pod, spec, kind=kind, attempt=attempt, env=env, mounts=mounts)
            sb_config = sandbox_config(self.pod, attempt=obs.sandbox.attempt, log_root=self.ctx.log_root)
            cid = await rt.create_container(obs.sandbox.id, config, sb_config)
        except PodSpecError as err:
            self._waiting[name] = (err.reason, err.message)
            self.ctx.events.emit(self.pod, "Failed", err.message, warning=True, container=name)
            self._later(2.0)
            return
        except NodedError as err:
            self._waiting[name] = ("CreateContainerError", str(err))
            self._later(2.0)
            return
        self.ctx.events.emit(self.pod, "Created", f"Created container {name}", container=name)
        try:
            await rt.start_container(cid)
        except NodedError as err:
            self._waiting[name] = ("RunContainerError", str(err))
            self._later(2.0)
            return
        self._waiting.pop(name, None)
        self.ctx.events.emit(self.pod, "Started", f"Started container {name}", container=name)
        # Keep the newest dead instance for `logs --previous`; older ones go.
        for old in obs.containers.get(name, [])[:-1]:
            await rt.remove_container(old.id)
            self._status_cache.pop(old.id, None)

    def _pod_with_ips(self, obs: Observed) -> dict[str, Any]:
        """The pod as fieldRefs see it: status.podIP is known once the sandbox has its network."""
        status = dict(self.pod.get("status") or {})
        if obs.sandbox is not None and obs.sandbox.ips:
            status["podIP"] = obs.sandbox.ips[0]
            status["podIPs"] = [{"ip": ip} for ip in obs.sandbox.ips]
        if self.ctx.host_ip:
            status["hostIP"] = self.ctx.host_ip
            status["hostIPs"] = [{"ip": self.ctx.host_ip}]
        return {**self.pod, "status": status}

    async def _new_sandbox(self, obs: Observed) -> None:
        """(Re)create the sandbox; whatever ran in a dead one is stopped and removed first."""
        rt = self.ctx.runtime
        old = await rt.list_pod_sandbox({LABEL_POD_UID: self.uid})
        attempt = max((s.attempt + 1 for s in old), default=0)
        for s in old:
            await rt.stop_pod_sandbox(s.id)
        config = sandbox_config(self.pod, attempt=attempt, log_root=self.ctx.log_root)
        began = time.monotonic()
        try:
            sid = await rt.run_pod_sandbox(config)
        except NodedError as err:
            self.ctx.events.emit(self.pod, "FailedCreatePodSandBox", str(err), warning=True)
            self._later(2.0)
            return
        if old:
            self.ctx.events.emit(self.pod, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
        for s in old:
            await rt.remove_pod_sandbox(s.id)
        self._ip_cache.pop(sid, None)
        log.debug("pod %s: sandbox %s (attempt %d) in %.3fs", self.name, sid, attempt, time.monotonic() - began)

    def _unhealthy(self, container: str, probe: str) -> None:
        self.ctx.events.emit(self.pod, "Unhealthy", f"{probe} probe failed", warning=True, container=container)

    # -- status --------------------------------------------------------------------------------
    async def _report(self, obs: Observed) -> None:
        status = pod_status(self.pod, obs)
        comparable = {**status, "conditions": [{**c, "lastTransitionTime": ""} for c in status["conditions"]]}
        if comparable == self._last_status:
            return
        meta = self.pod["metadata"]
        try:
            updated = await self.ctx.api.patch(
                PODS, meta["name"], {"status": status}, meta.get("namespace", "default"), subresource="status"
            )
        except NotFound:
            return  # deleted meanwhile (or a static pod whose mirror is not there yet)
        self._last_status = comparable
        if not self.static and updated.get("metadata", {}).get("uid") == self.uid:
            self.pod = {**self.pod, "status": updated.get("status", status)}
        else:
            self.pod = {**self.pod, "status": status}

    async def _finish(self, obs: Observed) -> None:
        """A pod that will not run again: its sandbox is stopped (containers stay for their logs)."""
        await self._report(obs)
        self.probes.cancel()
        if obs.sandbox is not None:
            await self.ctx.runtime.stop_pod_sandbox(obs.sandbox.id)

    # -- termination ---------------------------------------------------------------------------
    async def terminate(self) -> None:
        """Graceful stop (preStop hook, SIGTERM, SIGKILL after the grace period), then remove
        everything the pod had on this node and release it in the API."""
        rt = self.ctx.runtime
        grace = _grace(self.pod)
        self.probes.cancel()
        obs = await self.observe()
        specs = {c["name"]: c for c in (self.pod.get("spec") or {}).get("containers") or []}
        running = [c for cs in obs.containers.values() for c in cs if c.state == ContainerState.RUNNING]
        if running:
            self.ctx.events.emit(self.pod, "Killing", "Stopping pod")
        await asyncio.gather(*(self._stop_container(c, specs.get(c.name, {}), grace, obs) for c in running))
        for s in await rt.list_pod_sandbox({LABEL_POD_UID: self.uid}):
            await rt.stop_pod_sandbox(s.id)
            await rt.remove_pod_sandbox(s.id)
        for c in await rt.list_containers(labels={LABEL_POD_UID: self.uid}):
            await rt.remove_container(c.id)
        self.ctx.volumes.cleanup(self.uid)
        self.ctx.backoff.forget(self.uid)
        if not self.deleted and not self.static:
            meta = self.pod["metadata"]
            with contextlib.suppress(NotFound):
                await self.ctx.api.delete(
                    PODS,
                    meta["name"],
                    meta.get("namespace", "default"),
                    grace_period_seconds=0,
                    preconditions={"uid": self.uid},
                )
        log.info("pod %s: terminated", self.name)

    async def _stop_container(self, c: Container, spec: dict[str, Any], grace: int, obs: Observed) -> None:
        deadline = self.ctx.clock() + grace
        pre_stop = (spec.get("lifecycle") or {}).get("preStop")
        if pre_stop and grace > 0:
            pod_ip = obs.sandbox.ips[0] if obs.sandbox and obs.sandbox.ips else "127.0.0.1"
            try:
                if "sleep" in pre_stop:
                    await asyncio.sleep(min(grace, float(pre_stop["sleep"].get("seconds", 0))))
                else:
                    check = make_check(
                        pre_stop, spec, container_id=c.id, pod_ip=pod_ip, runtime=self.ctx.runtime, timeout=grace
                    )
                    async with asyncio.timeout(grace):
                        await check()
            except (TimeoutError, ValueError) as err:
                log.info("pod %s: preStop of %s did not finish: %r", self.name, c.name, err)
        remaining = max(0, int(deadline - self.ctx.clock()))
        await self.ctx.runtime.stop_container(c.id, remaining)
