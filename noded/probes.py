"""Liveness, readiness and startup probes: one asyncio task per (container, probe kind).

The threshold logic (`ProbeResult`) is pure; the checks (httpGet to the pod IP, tcpSocket, exec through
CRI ExecSync) are small async functions. Timing fields follow the Pod API: initialDelaySeconds,
periodSeconds (default 10), timeoutSeconds (default 1), successThreshold (default 1), failureThreshold
(default 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from noded.interfaces import RuntimeClient

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class ProbeSpec:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def from_api(cls, probe: dict[str, Any], *, time_scale: float = 1.0) -> ProbeSpec:
        return cls(
            initial_delay=float(probe.get("initialDelaySeconds", 0)) * time_scale,
            period=float(probe.get("periodSeconds", 10)) * time_scale,
            timeout=float(probe.get("timeoutSeconds", 1)) * time_scale,
            success_threshold=int(probe.get("successThreshold", 1)),
            failure_threshold=int(probe.get("failureThreshold", 3)),
        )


@dataclass
class ProbeResult:
    """Turns single check outcomes into the probe's result: it flips only after `success_threshold`
    consecutive successes or `failure_threshold` consecutive failures."""

    spec: ProbeSpec
    ok: bool
    _streak: int = 0
    _streak_ok: bool = True

    def observe(self, ok: bool) -> bool:
        """Feed one check; returns True when the result changed."""
        if ok == self._streak_ok:
            self._streak += 1
        else:
            self._streak_ok, self._streak = ok, 1
        threshold = self.spec.success_threshold if ok else self.spec.failure_threshold
        if ok != self.ok and self._streak >= threshold:
            self.ok = ok
            return True
        return False


def _port(value: Any, container: dict[str, Any]) -> int:
    """A probe port is a number or the name of one of the container's ports."""
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for p in container.get("ports") or []:
        if p.get("name") == value:
            return int(p["containerPort"])
    raise ValueError(f"no container port named {value!r}")


async def http_get(host: str, port: int, path: str, *, headers: dict[str, str], timeout: float, scheme: str) -> bool:
    """HTTP GET; success is a status in [200, 400), as the kubelet judges it."""
    ssl_ctx: Any = None
    if scheme.upper() == "HTTPS":
        import ssl

        ssl_ctx = ssl.create_default_context()
        ssl_ctx.check_hostname = False
        ssl_ctx.verify_mode = ssl.CERT_NONE  # the kubelet does not verify probe certificates either
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=ssl_ctx)
            try:
                lines = [f"GET {path or '/'} HTTP/1.0", f"Host: {host}:{port}", "User-Agent: tinykube-probe/1"]
                lines += [f"{k}: {v}" for k, v in headers.items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        parts = status_line.split()
        return len(parts) >= 2 and 200 <= int(parts[1]) < 400
    except (OSError, TimeoutError, ValueError):
        return False


async def tcp_socket(host: str, port: int, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    except (OSError, TimeoutError):
        return False


def make_check(
    probe: dict[str, Any],
    container: dict[str, Any],
    *,
    container_id: str,
    pod_ip: str,
    runtime: RuntimeClient,
    timeout: float,
) -> Check:
    """The check function a probe/lifecycle-handler spec describes."""
    if "exec" in probe:
        command = list(probe["exec"].get("command") or [])

        async def run_exec() -> bool:
            try:
                result = await runtime.exec_sync(container_id, command, max(1, int(timeout)))
            except Exception as err:
                log.debug("exec probe failed: %s", err)
                return False
            return result.exit_code == 0

        return run_exec
    if "httpGet" in probe:
        h = probe["httpGet"]
        host = h.get("host") or pod_ip
        port = _port(h.get("port", 80), container)
        headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}

        async def run_http() -> bool:
            return await http_get(
                host, port, h.get("path", "/"), headers=headers, timeout=timeout, scheme=h.get("scheme", "HTTP")
            )

        return run_http
    if "tcpSocket" in probe:
        t = probe["tcpSocket"]
        host = t.get("host") or pod_ip
        port = _port(t.get("port"), container)

        async def run_tcp() -> bool:
            return await tcp_socket(host, port, timeout)

        return run_tcp
    raise ValueError(f"unsupported probe handler: {sorted(probe)}")


async def run_probe(
    spec: ProbeSpec,
    check: Check,
    result: ProbeResult,
    on_change: Callable[[bool], None],
    *,
    gate: Callable[[], bool] = lambda: True,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Probe until cancelled or `until()` holds (a startup probe ends once it succeeded): wait the
    initial delay, then check every period while `gate` allows (liveness/readiness wait for startup)."""
    await asyncio.sleep(spec.initial_delay)
    while not until():
        if gate():
            ok = await check()
            if result.observe(ok):
                on_change(result.ok)
        await asyncio.sleep(spec.period)
