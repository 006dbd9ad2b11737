"""The probes of one pod: an asyncio task per (running container, probe kind), and what they concluded
— readiness per container, whether the startup probe has passed, and which container ids a failed
liveness/startup probe condemned (the pod worker kills and restarts those)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from noded.interfaces import RuntimeClient
from noded.probes import ProbeResult, ProbeSpec, make_check, run_probe
from noded.status import Observed
from noded.types import Container, ContainerState

KINDS = ("startupProbe", "livenessProbe", "readinessProbe")


class PodProbes:
    def __init__(
        self,
        runtime: RuntimeClient,
        *,
        time_scale: float,
        on_change: Callable[[], None],
        on_unhealthy: Callable[[str, str], None],
    ) -> None:
        self.runtime = runtime
        self.time_scale = time_scale
        self.on_change = on_change  # any result changed: the worker re-syncs
        self.on_unhealthy = on_unhealthy  # (container name, "Liveness"|"Startup")
        self.ready: dict[str, bool] = {}  # container name → readiness (absent: no readiness probe)
        self.started: dict[str, bool] = {}  # container name → startup probe passed (absent: none)
        self.doomed: set[str] = set()  # container ids to kill
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}  # container id → its probe tasks

    def ensure(self, containers: list[dict[str, Any]], obs: Observed) -> None:
        """Probe every running container of the current sandbox; stop probing the others."""
        running: set[str] = set()
        for spec in containers:
            c = obs.latest(spec["name"])
            if c is None or c.state != ContainerState.RUNNING or obs.sandbox is None:
                continue
            running.add(c.id)
            if c.id not in self._tasks:
                self._start(c, spec, obs.sandbox.ips[0] if obs.sandbox.ips else "127.0.0.1")
        self.cancel(keep=running)

    def _start(self, c: Container, spec: dict[str, Any], pod_ip: str) -> None:
        name, cid = c.name, c.id
        # A new container starts unready and not started until its probes say otherwise.
        for table, kind in ((self.started, "startupProbe"), (self.ready, "readinessProbe")):
            if kind in spec:
                table[name] = False
            else:
                table.pop(name, None)

        def started() -> bool:
            return self.started.get(name, True)

        tasks = []
        for kind in KINDS:
            probe = spec.get(kind)
            if not probe:
                continue
            pspec = ProbeSpec.from_api(probe, time_scale=self.time_scale)
            check = make_check(
                probe, spec, container_id=cid, pod_ip=pod_ip, runtime=self.runtime, timeout=pspec.timeout
            )
            initial = kind == "livenessProbe"  # liveness starts as passing, the others as failing
            result = ProbeResult(pspec, ok=initial, _streak_ok=initial)
            startup = kind == "startupProbe"
            coro = run_probe(
                pspec,
                check,
                result,
                self._handler(kind, name, cid),
                gate=(lambda: True) if startup else started,
                until=started if startup else (lambda: False),
            )
            tasks.append(asyncio.get_running_loop().create_task(coro, name=f"probe-{kind}-{cid}"))
        self._tasks[cid] = tasks

    def _handler(self, kind: str, name: str, cid: str) -> Callable[[bool], None]:
        def on_change(ok: bool) -> None:
            if cid not in self._tasks:
                return  # a late result of a container no longer probed
            if kind == "readinessProbe":
                self.ready[name] = ok
            elif kind == "startupProbe" and ok:
                self.started[name] = True
            elif not ok:
                self.doomed.add(cid)
                self.on_unhealthy(name, "Liveness" if kind == "livenessProbe" else "Startup")
            self.on_change()

        return on_change

    def cancel(self, keep: set[str] | None = None) -> None:
        for cid in [k for k in self._tasks if k not in (keep or set())]:
            for task in self._tasks.pop(cid):
                task.cancel()
