"""`tinykube proxy` end to end: the daemon in a node netns watches a real API server (through a relay)
and programs the kernel; Services and EndpointSlices are written with the real client."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controlplane.client import KubeClient
from controlplane.resources import ENDPOINTSLICES, EVENTS, SERVICES
from controlplane.testing.server import ServerHandle, start_server
from netproxy.testing.objects import endpoint_slice, service
from tests.integration.netproxy.lab import CLIENT_IP, NODE_IP, PORT, Lab, backend_ip, build
from tests.integration.netproxy.relay import relay
from tests.support.namespaces import NetNS


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerHandle]:
    with start_server(tmp_path, controllers=False) as srv:
        yield srv


@pytest.fixture
def lab(netns_factory: Callable[[str], NetNS]) -> Iterator[Lab]:
    made = build(netns_factory, 2)
    try:
        yield made
    finally:
        made.close()


def _wait_for(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _health(lab: Lab) -> str:
    code = (
        "import urllib.request, urllib.error\n"
        "try:\n"
        f"    r = urllib.request.urlopen('http://{NODE_IP}:32111/', timeout=2)\n"
        "    print(r.status, r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code, e.read().decode()); e.close()\n"
        "except OSError as e:\n"
        "    print('error', e)\n"
    )
    return lab.client.run([sys.executable, "-c", code]).stdout.strip()


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
async def test_daemon_programs_services_from_the_api_and_follows_changes(
    server: ServerHandle, lab: Lab, tmp_path: Path, mode: str
) -> None:
    log = open(tmp_path / "proxy.log", "wb")  # noqa: SIM115 - handed to the child, closed below
    with relay(lab.node.path, server.port):
        argv = [sys.executable, "-m", "tinykube", "proxy", "--kubeconfig", server.kubeconfig, "--mode", mode]
        argv += ["--node-name", "node-a", "--cluster-cidr", "10.1.0.0/16", "--min-sync-period", "0.1"]
        proc = lab.node.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            async with KubeClient.from_kubeconfig(server.kubeconfig) as client:
                svc = service("web", "10.96.0.10", [{"name": "http", "port": 80, "targetPort": PORT}])
                await client.create(SERVICES, svc, "default")
                await client.create(
                    ENDPOINTSLICES, endpoint_slice("web", [backend_ip(0)], [{"name": "http", "port": PORT}]), "default"
                )
                assert _wait_for(lambda: lab.names("10.96.0.10", 80) == ["b0"]), (tmp_path / "proxy.log").read_text()
                slc = await client.get(ENDPOINTSLICES, "web-abcde", "default")
                slc["endpoints"][0]["addresses"] = [backend_ip(1)]
                await client.update(ENDPOINTSLICES, slc)
                assert _wait_for(lambda: lab.names("10.96.0.10", 80) == ["b1"]), (tmp_path / "proxy.log").read_text()
                # externalTrafficPolicy Local: the daemon serves the health-check node port.
                loc = service(
                    "loc", "10.96.0.11", [{"name": "http", "port": 80, "targetPort": PORT, "nodePort": 30111}]
                )
                loc["spec"].update(type="NodePort", externalTrafficPolicy="Local", healthCheckNodePort=32111)
                await client.create(SERVICES, loc, "default")
                eps = endpoint_slice("loc", [backend_ip(0)], [{"name": "http", "port": PORT}], node_name="node-a")
                await client.create(ENDPOINTSLICES, eps, "default")
                assert _wait_for(
                    lambda: (
                        _health(lab) == '200 {"service": {"namespace": "default", "name": "loc"}, "localEndpoints": 1}'
                    )
                )
                assert lab.connect(NODE_IP, 30111) == [f"b0 {CLIENT_IP}"]  # no SNAT
                await client.delete(SERVICES, "web", "default")
                assert _wait_for(lambda: lab.connect("10.96.0.10", 80) != ["b1 10.1.1.254"])
                assert "refused" not in (tmp_path / "proxy.log").read_text()
                events = await client.list(EVENTS, "default")
                assert all(e.get("source", {}).get("component") != "tinykube-proxy" for e in events["items"])
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(timeout=10) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                log.close()
