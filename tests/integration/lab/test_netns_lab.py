"""The netns lab's own machinery with stand-in daemons (root, inside the test run's namespaces):
namespaces, bridge, static and VXLAN pod routes, the API relay, process supervision and cleanup."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.namespaces import NetNS
from tinykube.lab import netns, netns_cgroups, netns_state, traffic
from tinykube.lab.netns_errors import AlreadyRunning, StartError
from tinykube.lab.netns_interfaces import Daemons, Launch, NodeDirs
from tinykube.lab.netns_plan import LabPlan, Mode, NodePlan, plan
from tinykube.lab.netns_standin import NODE_PORT, StandinDaemons
from tinykube.lab.netns_state import LabState

TRAFFIC = (sys.executable, "-m", "tinykube.lab.traffic")


def _name() -> str:
    return f"t{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def running_lab(lab: LabPlan, state_dir: Path, daemons: Daemons | None = None) -> Iterator[LabState]:
    state = netns.up(lab, state_dir=state_dir, daemons=daemons or StandinDaemons(), api_port=0, timeout=30)
    try:
        yield state
    finally:
        if netns_state.exists(state_dir):
            netns.down(state_dir)


def ask_from(ns: str, host: str, port: int) -> str:
    """What the echo host at host:port answers, asked from inside netns ns (retried while it starts)."""
    deadline = time.monotonic() + 10
    while True:
        argv = ["ip", "netns", "exec", ns, *TRAFFIC, "tcp", host, str(port), "--timeout", "1"]
        reply = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
        if reply not in ("REFUSED", "TIMEOUT") or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


@dataclass(frozen=True)
class Pod:
    ns: str
    ip: str

    @property
    def name(self) -> str:
        return f"pod-{self.ip}"


@contextlib.contextmanager
def pod(netns_factory: Callable[[str], NetNS], node: NodePlan, *, host: int) -> Iterator[Pod]:
    """A pod-like netns behind a veth into the node (gateway .1), serving its name on :8080."""
    ns = netns_factory("pod")
    prefix = node.pod_cidr.rsplit(".", 1)[0]
    ip, gateway, link = f"{prefix}.{host}", f"{prefix}.1", f"vp{host}"
    node_ns = NetNS(node.name)
    node_ns.run(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns.name])
    node_ns.run(["ip", "addr", "add", f"{gateway}/24", "dev", link])
    node_ns.run(["ip", "link", "set", link, "up"])
    ns.run(["ip", "addr", "add", f"{ip}/24", "dev", "eth0"])
    ns.run(["ip", "link", "set", "eth0", "up"])
    ns.run(["ip", "route", "add", "default", "via", gateway])
    server = ns.popen([*TRAFFIC, "serve", f"pod-{ip}", "8080", "--lifetime", "120"])
    try:
        yield Pod(ns.name, ip)
    finally:
        server.kill()
        server.wait()


def _vxlan_tx_packets(node: str) -> int:
    argv = ["ip", "-n", node, "-s", "-j", "link", "show", "tkvx0"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout)[0]["stats64"]["tx"]["packets"])


@pytest.mark.parametrize("mode", ["static", "vxlan"])
def test_pods_on_different_nodes_reach_each_other(
    tmp_path: Path, netns_factory: Callable[[str], NetNS], mode: Mode
) -> None:
    lab = plan(3, name=_name(), mode=mode)
    n1, n2, n3 = lab.nodes
    with running_lab(lab, tmp_path / "lab"), pod(netns_factory, n1, host=5) as p1, pod(netns_factory, n3, host=7) as p3:
        assert ask_from(p1.ns, p3.ip, 8080) == p3.name
        assert ask_from(p3.ns, p1.ip, 8080) == p1.name
        assert ask_from(n2.name, p1.ip, 8080) == p1.name
        assert ask_from(n2.name, n3.ip, NODE_PORT) == n3.name
        if mode == "vxlan":
            assert _vxlan_tx_packets(n1.name) > 0
        else:
            res = subprocess.run(["ip", "-n", n1.name, "link", "show", "tkvx0"], capture_output=True, check=False)
            assert res.returncode != 0


def test_the_host_reaches_the_control_plane_only_through_the_loopback_relay(tmp_path: Path) -> None:
    lab = plan(1, name=_name())
    with running_lab(lab, tmp_path / "lab") as state:
        assert traffic.tcp_once("127.0.0.1", state.api_port, 2.0) == "controlplane"
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        assert "tkbr0" not in links
        assert "veth1" not in links
        routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
        assert "172.31.0." not in routes


def test_nodes_run_in_their_own_mount_and_uts_namespaces_with_private_state(tmp_path: Path) -> None:
    lab = plan(2, name=_name())
    with running_lab(lab, tmp_path / "lab") as state:
        holders = {r.owner: r.pid for r in state.processes if r.role == "holder"}
        n1 = lab.nodes[0].name
        (tmp_path / "lab" / "nodes" / n1 / "run" / "marker").write_text("node1")
        show = "hostname; cat /run/tinykube/marker 2>/dev/null || echo none"
        seen = {
            name: subprocess.run(
                ["nsenter", f"--target={pid}", "--mount", "--uts", "sh", "-c", show],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            for name, pid in holders.items()
        }
        assert seen == {n1: [n1, "node1"], lab.nodes[1].name: [lab.nodes[1].name, "none"]}
        assert not Path("/run/tinykube/marker").exists()


def test_down_leaves_no_namespace_cgroup_process_or_state(tmp_path: Path) -> None:
    lab = plan(3, name=_name(), mode="vxlan")
    state_dir = tmp_path / "lab"
    mounts_before = _mount_points()
    with running_lab(lab, state_dir) as state:
        recorded = {r.pid for r in state.processes}
        deadline = time.monotonic() + 10
        # The stand-in cri leaves an unrecorded grandchild in a session of its own, as a runtime's
        # container would be: down must find it through the lab's cgroups.
        while len(lab_pids := netns_cgroups.pids(state.cgroups)) < len(recorded) + len(lab.nodes):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert lab_pids - recorded
        netns.down(state_dir)
    assert not [n for n in lab.netns_names if os.path.exists(f"/run/netns/{n}")]
    assert not [d for d in state.cgroups.dirs if os.path.exists(d)]
    assert not [p for p in lab_pids if _state_of(p) not in ("gone", "Z")]
    assert not state_dir.exists()
    assert _mount_points() == mounts_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", state.api_port), timeout=2)


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def _state_of(pid: int) -> str:
    with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]
    return "gone"


def test_second_up_is_refused_and_the_first_lab_keeps_running(tmp_path: Path) -> None:
    lab = plan(2, name=_name())
    with running_lab(lab, tmp_path / "lab"):
        with pytest.raises(AlreadyRunning, match="a lab already runs from"):
            netns.up(lab, state_dir=tmp_path / "lab", daemons=StandinDaemons(), api_port=0)
        with pytest.raises(AlreadyRunning, match=f"network namespace {lab.hub_netns} exists"):
            netns.up(lab, state_dir=tmp_path / "other", daemons=StandinDaemons(), api_port=0)
        assert netns.status(tmp_path / "lab").healthy
        assert not (tmp_path / "other").exists()


class _NodeThatDies(StandinDaemons):
    """The first node gets one more daemon, which dies: only one, so that which node the error names
    does not depend on which of two dying processes the scheduler let exit first."""

    def node(self, lab: LabPlan, node: NodePlan, dirs: NodeDirs, cp_dir: Path) -> list[Launch]:
        launches = super().node(lab, node, dirs, cp_dir)
        if node is not lab.nodes[0]:
            return launches
        broken = ("sh", "-c", "sleep 0.3; echo cannot start: no such thing >&2; exit 3")
        return [*launches, Launch("broken", broken)]

    def wait_nodes(self, lab: LabPlan, kubeconfig: str, *, deadline: float, check: Callable[[], None]) -> None:
        while True:
            check()
            time.sleep(0.05)


def test_a_failed_up_says_which_daemon_died_and_removes_everything_it_made(tmp_path: Path) -> None:
    lab = plan(2, name=_name())
    before = {d for h in netns_cgroups.hierarchies() for d in os.listdir(h) if d.startswith("tinykube-lab-")}
    with pytest.raises(StartError, match=r"broken of t\w+-node1 exited; the end of its log:\ncannot start: no such"):
        netns.up(lab, state_dir=tmp_path / "lab", daemons=_NodeThatDies(), api_port=0, timeout=20)
    after = {d for h in netns_cgroups.hierarchies() for d in os.listdir(h) if d.startswith("tinykube-lab-")}
    assert after == before
    assert not [n for n in lab.netns_names if os.path.exists(f"/run/netns/{n}")]
    assert not (tmp_path / "lab").exists()


def test_cli_up_status_down_with_daemons_outliving_the_up_command(tmp_path: Path) -> None:
    state_dir = str(tmp_path / "lab")
    cli = [sys.executable, "-m", "tinykube.lab.netns_cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [*cli, *args, "--state-dir", state_dir]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    up = run("up", "--nodes", "2", "--mode", "vxlan", "--api-port", "0", "--name", _name(), "--stand-ins")
    try:
        assert up.returncode == 0, up.stderr
        assert "2 nodes up (vxlan routing)" in up.stdout
        status = run("status", "--json")
        assert status.returncode == 0, status.stdout
        doc = json.loads(status.stdout)
        assert [n["podCIDR"] for n in doc["nodes"]] == ["10.244.1.0/24", "10.244.2.0/24"]
        assert all(p["running"] for p in doc["processes"])
        assert {p["role"] for p in doc["processes"]} == {"relay", "server", "holder", "cri", "node", "proxy"}
    finally:
        down = run("down")
    assert down.returncode == 0, down.stderr
    gone = run("status")
    assert gone.returncode == 2
    assert "no lab" in gone.stderr
