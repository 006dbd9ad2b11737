"""A node netns holding the proxy's rules, a client host and backend hosts, all made by the test.

    client 192.168.1.50 ── 192.168.1.1 node 10.1.i.254 ── 10.1.i.1 backend i   (i = 0..n-1)

The client routes everything via the node; each backend routes via the node; the node forwards.
Backends run `hostprog.py serve` on port 8080 (TCP and UDP) and answer with their name and the peer
address they saw, which tells a test both where a connection went and whether it was SNATed.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from netproxy.backends import make_backend
from netproxy.config import ProxyConfig
from netproxy.conntrack import ConntrackTool
from netproxy.nftables.backend import NftablesBackend
from netproxy.nftables.elements import NetlinkElements
from netproxy.nftables.kernel import NftTool
from netproxy.nftables.render import TABLE
from netproxy.proxier import Proxier, SyncResult
from netproxy.testing import FakeEvents
from tests.support.namespaces import NetNS, link_hosts
from tinykube.lab.nsthread import NetnsThread

PROG = str(Path(__file__).with_name("hostprog.py"))
NODE_IP = "192.168.1.1"
CLIENT_IP = "192.168.1.50"
PORT = 8080
CONFIG = ProxyConfig(node_name="node-a", cluster_cidr="10.1.0.0/16")


def backend_ip(i: int) -> str:
    return f"10.1.{i}.1"


@dataclass
class Lab:
    node: NetNS
    client: NetNS
    backends: list[NetNS]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    writers: list[NetlinkElements] = field(default_factory=list)

    def connect(
        self, ip: str, port: int, n: int = 1, *, proto: str = "tcp", sport: int = 0, host: NetNS | None = None
    ) -> list[str]:
        """Replies ("NAME PEER_IP", "refused", "timeout") to `n` new connections from `host` (the client)."""
        ns = host or self.client
        argv = [sys.executable, PROG, "connect", proto, ip, str(port), str(n), str(sport)]
        out = ns.run(argv, timeout=10 + 3 * n).stdout
        replies: list[str] = json.loads(out)
        return replies

    def names(self, ip: str, port: int, n: int = 1, **kw: Any) -> list[str]:
        return [r.split()[0] for r in self.connect(ip, port, n, **kw)]

    def popen(self, ns: NetNS, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = ns.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def proxier(self, mode: str, config: ProxyConfig = CONFIG) -> Proxier:
        """`mode`: a proxy mode, or `iptables-without-endpoint-chains` (the iptables layout of big clusters)."""
        prefix = ["ip", "netns", "exec", self.node.name]
        if mode == "iptables-without-endpoint-chains":
            mode, config = "iptables", replace(config, endpoint_chains_max=0)
        if mode == "nftables":  # element edits over a netlink socket made inside the node's netns
            with NetnsThread(self.node.path) as thread:
                elements = thread.call(lambda: NetlinkElements(TABLE))
            self.writers.append(elements)
            backend = NftablesBackend(NftTool(prefix), config, elements=elements)
            return Proxier(backend, config, conntrack=ConntrackTool(prefix), events=FakeEvents())
        return Proxier(make_backend(mode, config, prefix), config, conntrack=ConntrackTool(prefix), events=FakeEvents())

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


def readline(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output in time"
    return proc.stdout.readline().decode().strip()


def build(factory: Callable[[str], NetNS], n_backends: int) -> Lab:
    node, client = factory("tkn"), factory("tkc")
    link_hosts(client, node, f"{CLIENT_IP}/24", f"{NODE_IP}/24")
    client.run(["ip", "route", "add", "default", "via", NODE_IP])
    # Unproxied traffic to service addresses goes back out (not "no route"), so a REJECT is what refuses it.
    node.run(["ip", "route", "add", "default", "via", CLIENT_IP])
    # No ICMP rate limit: the redirect that route triggers would otherwise swallow the REJECT's unreachable.
    node.run(
        ["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.route_localnet=1", "net.ipv4.icmp_ratelimit=0"]
    )
    lab = Lab(node, client, [])
    for i in range(n_backends):
        b = factory("tkb")
        link_hosts(node, b, f"10.1.{i}.254/24", f"{backend_ip(i)}/24")
        b.run(["ip", "route", "add", "default", "via", f"10.1.{i}.254"])
        lab.backends.append(b)
        proc = lab.popen(b, [sys.executable, PROG, "serve", f"b{i}", str(PORT)])
        assert readline(proc) == "ready"
    return lab


def sync(proxier: Proxier) -> SyncResult:
    """One sync that must have gone through as a single transaction the kernel accepted."""
    result = proxier.sync_once()
    assert not result.recovered, "the one-transaction apply failed (see the log)"
    assert not result.rejected
    assert not proxier.need_full_sync
    return result


def feed(proxier: Proxier, objs: Iterable[dict[str, Any]]) -> None:
    for obj in objs:
        if obj["kind"] == "Service":
            proxier.on_service(obj)
        else:
            proxier.on_slice(obj)
