"""The node's HTTPS endpoint at the kubelet paths the API server proxies to (contract 2):

- `GET /containerLogs/{ns}/{pod}/{container}?follow=&previous=&tailLines=&timestamps=&limitBytes=`
- `/exec/{ns}/{pod}/{container}?command=…&output=1&error=1` over WebSocket (`v5`/`v4.channel.k8s.io`:
  channel 1 stdout, 2 stderr, 3 the final Status), run through CRI ExecSync; with `input=1` or `tty=1`
  through CRI Exec, relayed to the runtime's streaming server (`noded.streaming`)
- `/attach/{ns}/{pod}/{container}` (CRI Attach) and `/portForward/{ns}/{pod}?port=…` (CRI PortForward),
  relayed the same way
- `GET /stats/summary` (what `kubectl top`-like tools read), `GET /pods`, `GET /healthz`

Clients must present a certificate signed by the cluster CA (the API server's kubelet-client cert).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil
from aiohttp import WSMsgType, web

from noded.errors import NodedError
from noded.interfaces import RuntimeClient
from noded.logs import container_log_files, parse_line, read_log, render
from noded.manager import PodManager
from noded.status import rfc3339
from noded.streaming import (
    EXEC_PROTOCOLS,
    PORTFORWARD_PROTOCOLS,
    offered_protocols,
    serve_relay,
    serve_spdy_portforward,
    wants_spdy,
)
from noded.types import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    Container,
    ContainerState,
    SandboxState,
)

log = logging.getLogger(__name__)

CH_STDOUT, CH_STDERR, CH_ERROR = 1, 2, 3
EXEC_TIMEOUT = 600
FOLLOW_POLL = 0.2


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


def exec_status(exit_code: int, message: str = "") -> dict[str, Any]:
    """The metav1.Status kubectl reads from the error channel; the exit code travels in causes."""
    if exit_code == 0 and not message:
        return {"metadata": {}, "status": "Success"}
    if message:
        return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {exit_code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }


@dataclass
class NodeServer:
    runtime: RuntimeClient
    manager: PodManager
    log_root: str
    node_name: str
    _cpu_samples: dict[str, tuple[int, int]] = field(default_factory=dict)  # id → (timestamp ns, usage ns)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.container_logs)
        for method in ("GET", "POST"):
            app.router.add_route(method, "/exec/{ns}/{pod}/{container}", self.exec)
            app.router.add_route(method, "/exec/{ns}/{pod}/{uid}/{container}", self.exec)
            app.router.add_route(method, "/attach/{ns}/{pod}/{container}", self.attach)
            app.router.add_route(method, "/attach/{ns}/{pod}/{uid}/{container}", self.attach)
            app.router.add_route(method, "/portForward/{ns}/{pod}", self.port_forward)
            app.router.add_route(method, "/portForward/{ns}/{pod}/{uid}", self.port_forward)
        app.router.add_get("/stats/summary", self.stats_summary)
        app.router.add_get("/pods", self.pods)
        return app

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pods(self, _request: web.Request) -> web.Response:
        items = [w.pod for w in self.manager.workers.values()]
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    async def _container(self, ns: str, pod: str, name: str) -> Container | None:
        labels = {LABEL_POD_NAMESPACE: ns, LABEL_POD_NAME: pod, LABEL_CONTAINER_NAME: name}
        found = await self.runtime.list_containers(labels=labels)
        running = [c for c in found if c.state == ContainerState.RUNNING]
        return max(running or found, key=lambda c: (c.attempt, c.created_at), default=None)

    # -- logs ------------------------------------------------------------------------------------
    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, name = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        files = container_log_files(self.log_root, ns, pod, name)
        previous = _flag(request, "previous")
        if not files or (previous and len(files) < 2):
            what = "previous terminated container" if previous else "container"
            raise web.HTTPNotFound(text=f'{what} "{name}" in pod "{pod}" not found')
        path = files[-2] if previous else files[-1]
        tail_lines = int(request.query["tailLines"]) if request.query.get("tailLines") else None
        limit = int(request.query["limitBytes"]) if request.query.get("limitBytes") else None
        timestamps = _flag(request, "timestamps")
        data, offset = read_log(path, tail_lines=tail_lines, timestamps=timestamps)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        await resp.write(data[:limit] if limit is not None else data)
        if _flag(request, "follow") and not previous:
            with contextlib.suppress(ConnectionError):
                await self._follow(resp, path, offset, target=(ns, pod, name), timestamps=timestamps)
        with contextlib.suppress(ConnectionError):
            await resp.write_eof()
        return resp

    async def _follow(
        self, resp: web.StreamResponse, path: str, offset: int, *, target: tuple[str, str, str], timestamps: bool
    ) -> None:
        """Stream new lines until the container stops (checked once a second)."""
        last_check = 0.0
        with open(path, "rb") as f:
            f.seek(offset)
            pending = b""
            while True:
                chunk = f.read()
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    out = [render(p, timestamps=timestamps) for r in lines if (p := parse_line(r))]
                    if out:
                        await resp.write(b"".join(out))
                    continue
                now = time.monotonic()
                if now - last_check >= 1.0:
                    last_check = now
                    c = await self._container(*target)
                    if c is None or c.state != ContainerState.RUNNING:
                        return
                await asyncio.sleep(FOLLOW_POLL)

    # -- exec ------------------------------------------------------------------------------------
    async def _running(self, ns: str, pod: str, name: str) -> Container:
        c = await self._container(ns, pod, name)
        if c is None or c.state != ContainerState.RUNNING:
            raise NodedError(f'container "{name}" in pod "{pod}" is not running')
        return c

    def _spec_tty(self, ns: str, pod: str, name: str) -> bool:
        """Whether the pod spec gives the container a terminal (CRI Attach must match the container)."""
        for w in self.manager.workers.values():
            meta = w.pod["metadata"]
            if meta["name"] == pod and meta.get("namespace", "default") == ns:
                return any(c.get("name") == name and c.get("tty") for c in w.pod["spec"].get("containers") or [])
        return False

    async def exec(self, request: web.Request) -> web.StreamResponse:
        target = (request.match_info["ns"], request.match_info["pod"], request.match_info["container"])
        command = request.query.getall("command", [])
        stdin, tty = _flag(request, "input") or _flag(request, "stdin"), _flag(request, "tty")
        if command and (stdin or tty):

            async def url() -> str:
                c = await self._running(*target)
                stdout, stderr = _flag(request, "output"), _flag(request, "error")
                return await self.runtime.exec_url(c.id, command, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr)

            return await serve_relay(request, url, EXEC_PROTOCOLS)
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        try:
            status = await self._exec(ws, request, target)
        except NodedError as err:
            status = exec_status(-1, str(err))
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(bytes([CH_ERROR]) + json.dumps(status).encode())
            await ws.close()
        return ws

    async def _exec(
        self, ws: web.WebSocketResponse, request: web.Request, target: tuple[str, str, str]
    ) -> dict[str, Any]:
        ns, pod, name = target
        command = request.query.getall("command", [])
        if not command:
            return exec_status(-1, "no command given")
        c = await self._running(ns, pod, name)
        result = await self.runtime.exec_sync(c.id, command, EXEC_TIMEOUT)
        tty = _flag(request, "tty")
        if result.stdout:
            await ws.send_bytes(bytes([CH_STDOUT]) + result.stdout)
        if result.stderr:
            await ws.send_bytes(bytes([CH_STDOUT if tty else CH_STDERR]) + result.stderr)
        # Drain what the client sent (e.g. resize messages) without blocking the reply.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0):
                async for msg in ws:
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                        break
        return exec_status(result.exit_code)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        target = (request.match_info["ns"], request.match_info["pod"], request.match_info["container"])

        async def url() -> str:
            c = await self._running(*target)
            stdin, stdout, stderr = (_flag(request, f) for f in ("input", "output", "error"))
            return await self.runtime.attach_url(
                c.id, tty=self._spec_tty(*target), stdin=stdin, stdout=stdout, stderr=stderr
            )

        return await serve_relay(request, url, EXEC_PROTOCOLS)

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        ns, pod = request.match_info["ns"], request.match_info["pod"]

        async def url_for(ports: list[int]) -> str:
            sandboxes = await self.runtime.list_pod_sandbox(labels={LABEL_POD_NAMESPACE: ns, LABEL_POD_NAME: pod})
            ready = [s for s in sandboxes if s.state == SandboxState.READY]
            if not ready:
                raise NodedError(f'pod "{pod}" has no running sandbox on this node')
            url = await self.runtime.portforward_url(max(ready, key=lambda s: s.created_at).id, ports)
            # The streaming server reads the ports from the session's own query, as the client sent them.
            return url + ("&" if "?" in url else "?") + urlencode([("port", p) for p in ports])

        if wants_spdy(offered_protocols(request.headers.get("Sec-WebSocket-Protocol", ""))):
            # kubectl: ports come per connection in SPDY stream headers, one runtime session each.
            return await serve_spdy_portforward(request, lambda port: url_for([port]))
        try:
            ports = [int(p) for p in request.query.getall("port", [])]
        except ValueError as err:
            raise web.HTTPBadRequest(text=f"bad port: {err}") from err
        return await serve_relay(request, lambda: url_for(ports), PORTFORWARD_PROTOCOLS)

    # -- stats -----------------------------------------------------------------------------------
    def _nano_cores(self, cid: str, ts: int, usage: int) -> int | None:
        prev = self._cpu_samples.get(cid)
        self._cpu_samples[cid] = (ts, usage)
        if prev is None or ts <= prev[0]:
            return None
        return int((usage - prev[1]) * 1e9 / (ts - prev[0]))

    async def stats_summary(self, _request: web.Request) -> web.Response:
        now = time.time_ns()
        stamp = rfc3339(now)
        vm = psutil.virtual_memory()
        cpu = psutil.cpu_times()
        node_usage = int((cpu.user + cpu.system) * 1e9)
        node: dict[str, Any] = {
            "nodeName": self.node_name,
            "startTime": rfc3339(psutil.boot_time()),
            "cpu": {"time": stamp, "usageCoreNanoSeconds": node_usage},
            "memory": {
                "time": stamp,
                "availableBytes": vm.available,
                "usageBytes": vm.total - vm.available,
                "workingSetBytes": vm.total - vm.available,
            },
        }
        nano = self._nano_cores("node", now, node_usage)
        if nano is not None:
            node["cpu"]["usageNanoCores"] = nano
        by_uid: dict[str, list[dict[str, Any]]] = {}
        for s in await self.runtime.list_container_stats():
            entry: dict[str, Any] = {
                "name": s.name,
                "cpu": {"time": rfc3339(s.timestamp or now), "usageCoreNanoSeconds": s.cpu_usage_core_nanoseconds},
                "memory": {"time": rfc3339(s.timestamp or now), "workingSetBytes": s.memory_working_set_bytes},
            }
            nano = self._nano_cores(s.id, s.timestamp or now, s.cpu_usage_core_nanoseconds)
            if nano is not None:
                entry["cpu"]["usageNanoCores"] = nano
            by_uid.setdefault(s.pod_uid, []).append(entry)
        pods = []
        for w in self.manager.workers.values():
            containers = by_uid.get(w.uid, [])
            meta = w.pod["metadata"]
            pods.append(
                {
                    "podRef": {"name": meta["name"], "namespace": meta.get("namespace", "default"), "uid": w.uid},
                    "startTime": (w.pod.get("status") or {}).get("startTime", stamp),
                    "containers": containers,
                    "cpu": {
                        "time": stamp,
                        "usageCoreNanoSeconds": sum(c["cpu"]["usageCoreNanoSeconds"] for c in containers),
                        "usageNanoCores": sum(c["cpu"].get("usageNanoCores", 0) for c in containers),
                    },
                    "memory": {
                        "time": stamp,
                        "workingSetBytes": sum(c["memory"]["workingSetBytes"] for c in containers),
                    },
                }
            )
        return web.json_response({"node": node, "pods": pods})


def serving_context(cert_dir: str, node_name: str, node_ip: str, client_ca_pem: bytes | None) -> ssl.SSLContext:
    """TLS for the endpoint: a self-made serving certificate (like a kubelet's self-signed one) and,
    when the cluster CA is known, required client certificates signed by it."""
    from controlplane.pki import issue_serving_cert, new_ca, write_private

    crt, key = Path(cert_dir, "noded.crt"), Path(cert_dir, "noded.key")
    if not (crt.exists() and key.exists()):
        os.makedirs(cert_dir, exist_ok=True)
        hosts = [h for h in (node_name, node_ip, "127.0.0.1", "localhost") if h]
        pair = issue_serving_cert(new_ca(f"{node_name}-ca"), hosts=hosts)
        crt.write_bytes(pair.cert_pem)
        write_private(key, pair.key_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, key)
    if client_ca_pem:
        ctx.load_verify_locations(cadata=client_ca_pem.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
