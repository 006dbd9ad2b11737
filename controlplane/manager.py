"""Runs the scheduler and every controller inside the control-plane process.

`run()` campaigns for the controller-manager Lease; only while it leads does it start shared
informers and the loops, and it tears all of them down (caches included) when leadership is lost,
so a new term starts from a fresh list like a restarted process would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from controlplane.client import KubeClient
from controlplane.controllers.base import Context, Controller, SharedInformers
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.cronjob import CronJobController
from controlplane.controllers.daemonset import DaemonSetController
from controlplane.controllers.deployment import DeploymentController
from controlplane.controllers.endpoints import EndpointsController, EndpointSliceController
from controlplane.controllers.gc import GarbageCollector
from controlplane.controllers.job import JobController
from controlplane.controllers.leaderelection import LeaderElector
from controlplane.controllers.namespace import NamespaceController
from controlplane.controllers.nodelifecycle import NodeLifecycleController
from controlplane.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from controlplane.controllers.resourcequota import ResourceQuotaController
from controlplane.controllers.serviceaccount import ServiceAccountController
from controlplane.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)

ControllerFactory = Callable[[Context], Controller]

ALL_CONTROLLERS: dict[str, ControllerFactory] = {
    "scheduler": Scheduler,
    "replicaset": ReplicaSetController,
    "replicationcontroller": ReplicationControllerController,
    "deployment": DeploymentController,
    "endpointslice": EndpointSliceController,
    "endpoints": EndpointsController,
    "nodelifecycle": NodeLifecycleController,
    "namespace": NamespaceController,
    "garbagecollector": GarbageCollector,
    "serviceaccount": ServiceAccountController,
    "daemonset": DaemonSetController,
    "job": JobController,
    "resourcequota": ResourceQuotaController,
    "cronjob": CronJobController,
}


async def run_controllers(
    client: KubeClient,
    config: ControllerConfig,
    names: Sequence[str] | None = None,
    *,
    now: Callable[[], float] = time.time,
) -> None:
    """One leadership term: informers + every selected loop, until cancelled. `now` is the wall
    clock the loops judge deadlines by (tests shift it instead of waiting)."""
    informers = SharedInformers(client, watch_timeout=config.watch_timeout)
    ctx = Context(client=client, informers=informers, config=config, now=now)
    selected = [ALL_CONTROLLERS[n] for n in (names or ALL_CONTROLLERS)]
    controllers = [factory(ctx) for factory in selected]
    try:
        await informers.start()
        log.info("controllers: starting %s", ", ".join(c.name for c in controllers))
        workers = {"scheduler": 1}
        await asyncio.gather(*(c.run(workers.get(c.name, config.workers)) for c in controllers))
    finally:
        for c in controllers:
            c.queue.shutdown()
        await informers.stop()


async def run(
    kubeconfig: str,
    *,
    stop: asyncio.Event,
    leader_elect: bool = True,
    config: ControllerConfig | None = None,
    controllers: Sequence[str] | None = None,
    identity: str | None = None,
    now: Callable[[], float] = time.time,
) -> None:
    """Entry point the control-plane process calls once its API is ready; returns after `stop` is set."""
    config = config or ControllerConfig()
    client = KubeClient.from_kubeconfig(kubeconfig, user_agent="tinykube-controller-manager")
    try:
        if not leader_elect:
            await _until_stopped(lambda: run_controllers(client, config, controllers, now=now), stop)
            return
        elector = LeaderElector(
            client,
            identity=identity or f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:8]}",
            namespace=config.lease_namespace,
            name=config.lease_name,
            lease_duration=config.lease_duration,
            renew_deadline=config.renew_deadline,
            retry_period=config.retry_period,
        )
        await elector.run(lambda: run_controllers(client, config, controllers, now=now), stop)
    finally:
        await client.close()


async def _until_stopped(work: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event) -> None:
    """Runs `work` until `stop`; if it crashes, starts it again (fresh caches) after a pause."""
    pause = 1.0
    while not stop.is_set():
        task = asyncio.create_task(work())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        stopper.cancel()
        results = await asyncio.gather(task, stopper, return_exceptions=True)
        if not stop.is_set():
            log.error("controllers stopped unexpectedly (%r); restarting in %.0fs", results[0], pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            pause = min(pause * 2, 30.0)
