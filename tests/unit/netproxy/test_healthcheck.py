from __future__ import annotations

import asyncio
import json
import socket

from netproxy.healthcheck import HealthServer, HealthStatus, response


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def test_response_is_200_with_local_endpoints_and_503_without() -> None:
    ok = response(HealthStatus("ns/web", 2))
    assert ok.startswith(b"HTTP/1.0 200 OK")
    assert json.loads(ok.split(b"\r\n\r\n", 1)[1]) == {
        "service": {"namespace": "ns", "name": "web"},
        "localEndpoints": 2,
    }
    assert response(HealthStatus("ns/web", 0)).startswith(b"HTTP/1.0 503")


async def test_server_listens_on_desired_ports_and_closes_removed_ones() -> None:
    port = _free_port()
    server = HealthServer(host="127.0.0.1")
    server.desired = {port: HealthStatus("default/loc", 1)}
    await server.reconcile()
    try:
        assert (await _get(port)).startswith(b"HTTP/1.0 200")
        server.desired = {port: HealthStatus("default/loc", 0)}
        assert (await _get(port)).startswith(b"HTTP/1.0 503")
    finally:
        await server.close()
    try:
        await _get(port)
        raise AssertionError("port still open")
    except ConnectionRefusedError:
        pass
