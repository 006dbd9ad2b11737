"""50 concurrent ADDs get 50 distinct addresses: through the agent (threads sharing one process) and
through 50 separate host-local processes (no agent), both serialised by the per-network file lock."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cni import invoke
from tests.integration.cni.conftest import Node, make_node
from tests.support.namespaces import NetNS

N = 50


def test_fifty_concurrent_adds_through_the_agent_get_distinct_addresses(
    agent_node: Node, netns_factory: Callable[[str], NetNS]
) -> None:
    node = agent_node
    pods = [netns_factory("pod") for _ in range(N)]
    ids = [uuid.uuid4().hex for _ in pods]
    with ThreadPoolExecutor(max_workers=N) as pool:
        results = list(pool.map(node.add, pods, ids))
    addresses = [invoke.pod_ips(r, "eth0")[0] for r in results]
    assert len(set(addresses)) == N
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("10.99.0.0/24") for a in addresses)
    assert "10.99.0.1" not in addresses  # the gateway is never handed out
    assert len(node.reservations()) == N
    # Each pod really holds the address its result names.
    for pod, address in zip(pods[:5], addresses[:5], strict=True):
        assert f"{address}/24" in pod.run(["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
    with ThreadPoolExecutor(max_workers=N) as pool:
        list(pool.map(node.delete, pods, ids))
    assert node.reservations() == []
    node.wait_links_gone("veth")


def test_fifty_concurrent_host_local_processes_without_agent_get_distinct_addresses(
    tmp_path: Path, netns_factory: Callable[[str], NetNS]
) -> None:
    with make_node(tmp_path, netns_factory("host"), "no-agent") as node:
        conf = {**node.conf.plugins[0], "name": node.conf.name, "cniVersion": "1.0.0"}
        stdin = json.dumps(conf).encode()
        exe = os.path.join(node.bin_dir, "tinykube-host-local")
        procs = []
        for _ in range(N):
            env = {
                "CNI_COMMAND": "ADD",
                "CNI_CONTAINERID": uuid.uuid4().hex,
                "CNI_NETNS": "/proc/self/ns/net",
                "CNI_IFNAME": "eth0",
                "CNI_PATH": node.bin_dir,
            }
            proc = subprocess.Popen([exe], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert proc.stdin is not None
            proc.stdin.write(stdin)  # fits the pipe buffer: all 50 start allocating at once
            proc.stdin.close()
            procs.append(proc)
        outputs = []
        for proc in procs:
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.stdout.close()
            assert proc.wait(timeout=120) == 0, out
            outputs.append(json.loads(out)["ips"][0]["address"])
        assert len(set(outputs)) == N
        assert len(node.reservations()) == N
