"""Health-check node ports of `externalTrafficPolicy: Local` Services.

A load balancer asks each node `GET /` on the Service's `healthCheckNodePort`; the node answers 200 when
it has local endpoints and 503 when not, so traffic only goes to nodes that will not drop it. The JSON
body has the shape kube-proxy answers with (`service`, `localEndpoints`). A tiny HTTP/1.0 responder on
asyncio streams is enough for this one request shape; no framework is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from dataclasses import dataclass, field

from netproxy.model import DesiredState, select_endpoints

log = logging.getLogger("netproxy.health")


@dataclass(frozen=True)
class HealthStatus:
    service: str  # ns/name
    local_endpoints: int


def health_ports(state: DesiredState, node_name: str) -> dict[int, HealthStatus]:
    """Health-check port → status, for every Local-policy Service port that has one."""
    out: dict[int, HealthStatus] = {}
    for service in sorted(state.services):
        local: set[str] = set()
        hc_port = 0
        for port, eps in state.ports(service):
            if port.external_policy_local and port.health_check_node_port:
                hc_port = port.health_check_node_port
                local |= {e.ip for e in select_endpoints(port, eps, node_name).local}
        if hc_port:
            out[hc_port] = HealthStatus(service, len(local))
    return out


def response(status: HealthStatus | None) -> bytes:
    if status is None:
        code, body = "404 Not Found", b"{}"
    else:
        ns, name = status.service.split("/", 1)
        code = "200 OK" if status.local_endpoints else "503 Service Unavailable"
        body = json.dumps(
            {"service": {"namespace": ns, "name": name}, "localEndpoints": status.local_endpoints}
        ).encode()
    head = f"HTTP/1.0 {code}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


@dataclass
class HealthServer:
    """Listens on every port of `desired` (after `reconcile`) and answers from its current status."""

    host: str = "0.0.0.0"
    desired: dict[int, HealthStatus] = field(default_factory=dict)
    _servers: dict[int, asyncio.Server] = field(default_factory=dict)

    async def _serve(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            writer.write(response(self.desired.get(port)))
            await writer.drain()
        writer.close()

    async def reconcile(self) -> None:
        for port in set(self._servers) - set(self.desired):
            server = self._servers.pop(port)
            server.close()
            await server.wait_closed()
        for port in set(self.desired) - set(self._servers):
            try:
                self._servers[port] = await asyncio.start_server(
                    functools.partial(self._serve, port), self.host, port, reuse_address=True
                )
            except OSError as err:
                log.error("cannot listen on health-check port %d: %s", port, err)

    async def close(self) -> None:
        self.desired = {}
        await self.reconcile()
