"""The netns lab: one control plane and N nodes, each node a network namespace, on one machine.

    host netns (where `lab up` runs)          only a listening socket on 127.0.0.1:<api-port>
      └─ relay ──▶ hub netns "<lab>-hub"       bridge tkbr0 172.31.0.1, API server :6443
                    ├─ veth1 ─ eth0 of netns "<lab>-node1" 172.31.0.2, pods 10.244.1.0/24
                    └─ veth2 ─ eth0 of netns "<lab>-node2" 172.31.0.3, pods 10.244.2.0/24 …

Each node also has a holder process (like a pod's pause) owning the node's mount and UTS namespaces,
in which the node's own state directories are bind-mounted over tinykube's default paths
(/var/lib/tinykube, /run/tinykube, /etc/cni/net.d, …), so its daemons keep their defaults and whatever
they mount stays inside the node; its /sys is the node netns's sysfs, with the cgroup hierarchies
carried over. Daemons enter the node with nsenter and run in the node's cgroup; a runtime puts its
pods in the node's `pods` cgroup, so `down` finds them too.

Everything made is recorded in the state file as it is made; `down` (also run when `up` fails)
stops the recorded processes by (pid, start time), kills what remains in the lab's cgroups and
namespaces, deletes the namespaces (which removes every link, address and route with them), the
cgroups and the state directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tinykube.lab import netns_cgroups as cgroups
from tinykube.lab import netns_procs as procs
from tinykube.lab import netns_state
from tinykube.lab.netns_errors import AlreadyRunning, NetLabError, NotRunning, StartError
from tinykube.lab.netns_interfaces import NETNS_DIR, NODE_BINDS, Daemons, Launch, NodeDirs
from tinykube.lab.netns_plan import API_PORT, LabPlan, NodePlan
from tinykube.lab.netns_state import LabState
from tinykube.lab.netns_topology import NetnsConfig, render

DEFAULT_STATE_DIR = "/var/lib/tinykube/lab"
CONTROLPLANE = "controlplane"
LOCK_FILE = "lock"
TOOLS = ("ip", "bridge", "nsenter", "unshare", "mount", "sh")
CGROUP_PARKING = ".cgroup-fs"  # where a holder keeps the cgroup mounts while it remounts /sys


@dataclass
class Status:
    plan: LabPlan
    api: str
    kubeconfig: str
    processes: list[tuple[procs.ProcRecord, bool]] = field(default_factory=list)
    missing_netns: list[str] = field(default_factory=list)
    ready_seconds: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.missing_netns and all(alive for _, alive in self.processes)


def _run(argv: Sequence[str], *, input: str | None = None, timeout: float = 30.0) -> None:
    res = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise StartError(f"{shlex.join(argv)} failed ({res.returncode}): {res.stderr.strip() or res.stdout.strip()}")


def _apply(cfg: NetnsConfig) -> None:
    _run(["ip", "-n", cfg.netns, "-batch", "-"], input="\n".join(cfg.ip) + "\n")
    if cfg.bridge:
        _run(["bridge", "-n", cfg.netns, "-batch", "-"], input="\n".join(cfg.bridge) + "\n")
    if cfg.sysctls:
        _run(["ip", "netns", "exec", cfg.netns, "sysctl", "-qw", *(f"{k}={v}" for k, v in cfg.sysctls)])


def holder_script(node: NodePlan, root: Path) -> str:
    """Shell run by a node's holder in the node's netns and fresh mount + UTS namespaces. A sysfs
    mounted there lists the node's links (runtimes and CNI read /sys/class/net), with the cgroup
    hierarchies carried over onto it. Binds are relative to the node's root (its cwd), so a bind
    over an ancestor of the state dir cannot hide the later sources."""
    lines = ["set -e", f"cd {shlex.quote(str(root))}", f"hostname {shlex.quote(node.name)}"]
    lines += [
        f"mkdir -p {CGROUP_PARKING}",
        f"mount --rbind {cgroups.CGROUP_FS} {CGROUP_PARKING}",
        "mount -t sysfs sysfs /sys",
        f"mount --move {CGROUP_PARKING} {cgroups.CGROUP_FS}",
    ]
    for key, target in NODE_BINDS.items():
        lines += [f"mkdir -p {key} {target}", f"mount --bind {key} {target}"]
    lines += ["echo ready", "exec sleep infinity >/dev/null"]
    return "\n".join(lines)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise AlreadyRunning(f"another `tinykube lab` command is working on {state_dir}") from err
        yield


def _listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as err:
        sock.close()
        raise StartError(f"cannot listen on 127.0.0.1:{port} for the API relay: {err}") from err
    sock.listen(128)
    return sock


class _Up:
    """The steps of `up`, each recording what it made in the state before moving on."""

    def __init__(self, state: LabState, daemons: Daemons) -> None:
        self.state = state
        self.lab = state.plan
        self.daemons = daemons
        self.dir = Path(state.state_dir)
        self.cp_dir = self.dir / CONTROLPLANE
        self.holders: dict[str, int] = {}

    def _spawn(
        self, owner: str, role: str, argv: Sequence[str], *, cgroup: str, pass_fds: Sequence[int] = ()
    ) -> procs.ProcRecord:
        log = self.dir / "logs" / f"{owner}.{role}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cg = cgroups.procs_files(self.state.cgroups, cgroup)
        rec = procs.record(
            procs.spawn(argv, log=str(log), cgroup_procs=cg, pass_fds=pass_fds), owner=owner, role=role, log=str(log)
        )
        self.state.processes.append(rec)
        self.state.save()
        return rec

    def network(self) -> None:
        for name in self.lab.netns_names:
            _run(["ip", "netns", "add", name])
            self.state.netns.append(name)
            self.state.save()
        for cfg in render(self.lab):
            _apply(cfg)

    def cgroups(self) -> None:
        owners = [
            CONTROLPLANE,
            *(f"{n.name}/daemons" for n in self.lab.nodes),
            *(f"{n.name}/pods" for n in self.lab.nodes),
        ]
        cgroups.create(self.state.cgroups, owners)

    def start_control_plane(self, api_port: int) -> None:
        listener = _listener(api_port)
        with listener:
            self.state.api_port = listener.getsockname()[1]
            fd = listener.fileno()
            relay = [sys.executable, "-m", "tinykube.lab.netns_forward", "--fd", str(fd)]
            relay += ["--to", f"{self.lab.hub_ip}:{API_PORT}"]
            argv = ["ip", "netns", "exec", self.lab.hub_netns, *relay]
            self._spawn(CONTROLPLANE, "relay", argv, cgroup=CONTROLPLANE, pass_fds=(fd,))
        self.cp_dir.mkdir(exist_ok=True)
        for launch in self.daemons.control_plane(self.lab, self.cp_dir):
            argv = ["ip", "netns", "exec", self.lab.hub_netns, *launch.argv]
            self._spawn(CONTROLPLANE, launch.role, argv, cgroup=CONTROLPLANE)

    def wait_control_plane(self, deadline: float) -> None:
        host_api = f"127.0.0.1:{self.state.api_port}"
        self.state.kubeconfig = self.daemons.wait_control_plane(
            self.lab, self.cp_dir, host_api=host_api, deadline=deadline, check=self.check_alive
        )
        self.state.save()

    def _holder(self, node: NodePlan, root: Path) -> procs.ProcRecord:
        argv = ["nsenter", f"--net={NETNS_DIR}/{node.name}", "unshare", "--mount", "--uts", "--propagation", "private"]
        argv += ["--", "sh", "-c", holder_script(node, root)]
        log = self.dir / "logs" / f"{node.name}.holder.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cg = cgroups.procs_files(self.state.cgroups, f"{node.name}/daemons")
        spawned = procs.spawn(argv, log=str(log), cgroup_procs=cg, stdout_pipe=True)
        assert spawned.stdout is not None
        with open(spawned.stdout, "rb") as out:
            rec = procs.record(spawned, owner=node.name, role="holder", log=str(log))
            self.state.processes.append(rec)
            self.state.save()
            ready, _, _ = select.select([out], [], [], 10.0)
            line = out.readline() if ready else b""
        if line.strip() != b"ready":
            raise StartError(f"node {node.name}: its mount namespace could not be set up (see {log})")
        return rec

    def _in_node(self, node: NodePlan, launch: Launch) -> list[str]:
        return ["nsenter", f"--target={self.holders[node.name]}", "--mount", "--uts", "--net", "--", *launch.argv]

    def _node_launch(self, node: NodePlan, launch: Launch) -> None:
        self._spawn(node.name, launch.role, self._in_node(node, launch), cgroup=f"{node.name}/daemons")

    def _oneshots(self, steps: list[tuple[NodePlan, Launch]], deadline: float) -> None:
        """Run the nodes' one-shot steps side by side; each must succeed in time."""
        running = [
            (
                node,
                launch,
                subprocess.Popen(self._in_node(node, launch), stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
            )
            for node, launch in steps
        ]
        failed: list[str] = []
        for node, launch, proc in running:
            try:
                out, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 1.0))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            if proc.returncode != 0:
                failed.append(f"{launch.role} of {node.name} failed ({proc.returncode}): {out.decode().strip()}")
        if failed:
            raise StartError("\n".join(failed))

    def start_node_runtimes(self) -> None:
        """Holders, then what needs no API server (the runtimes), while the API server starts."""
        for node in self.lab.nodes:
            root = self.dir / "nodes" / node.name
            for key in NODE_BINDS:
                (root / key).mkdir(parents=True, exist_ok=True)
            self.holders[node.name] = self._holder(node, root).pid
            for launch in self.daemons.node_runtime(self.lab, node, self._dirs(node)):
                self._node_launch(node, launch)

    def join_nodes(self, deadline: float) -> None:
        launches = [
            (n, launch) for n in self.lab.nodes for launch in self.daemons.node(self.lab, n, self._dirs(n), self.cp_dir)
        ]
        self._oneshots([(n, launch) for n, launch in launches if launch.oneshot], deadline)
        for node, launch in launches:
            if not launch.oneshot:
                self._node_launch(node, launch)
        self.daemons.wait_nodes(self.lab, self.state.kubeconfig, deadline=deadline, check=self.check_alive)

    def _dirs(self, node: NodePlan) -> NodeDirs:
        root = self.dir / "nodes" / node.name
        return NodeDirs(root=root, logs=self.dir / "logs", cgroup_pods=self.state.cgroups.path(f"{node.name}/pods"))

    def timed(self, step: str, fn: Callable[[], None]) -> None:
        began = time.monotonic()
        fn()
        self.state.timings[step] = round(time.monotonic() - began, 2)

    def check_alive(self) -> None:
        dead = [r for r in self.state.processes if not procs.is_alive(r)]
        if dead:
            r = dead[0]
            # Quote the log: a failed `up` removes the state dir the log lives in.
            raise StartError(f"{r.role} of {r.owner} exited; the end of its log:\n{_tail(r.log)}")


def _tail(path: str, lines: int = 8) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip() or "(empty)"
    except FileNotFoundError:
        return "(no log)"


def _refuse_second_lab(lab: LabPlan, sdir: Path) -> None:
    if netns_state.exists(sdir):
        raise AlreadyRunning(f"a lab already runs from {sdir}: `tinykube lab down --state-dir {sdir}` first")
    clash = [n for n in lab.netns_names if os.path.exists(os.path.join(NETNS_DIR, n))]
    if clash:
        raise AlreadyRunning(f"network namespace {clash[0]} exists: another lab named {lab.name!r} runs")


def up(
    lab: LabPlan,
    *,
    state_dir: str | os.PathLike[str],
    daemons: Daemons,
    api_port: int = API_PORT,
    timeout: float = 60.0,
) -> LabState:
    """Make the lab; on any failure undo everything made so far and raise."""
    if os.geteuid() != 0:
        raise NetLabError("lab up makes network namespaces and cgroups: run it as root, inside `unshare` (README)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise NetLabError(f"lab up needs {', '.join(missing)} (Debian packages iproute2 and util-linux)")
    sdir = Path(state_dir)
    _refuse_second_lab(lab, sdir)  # before the lock, which would leave a state dir behind
    with _locked(sdir):
        _refuse_second_lab(lab, sdir)  # again, now that no other `lab` command can be half-way
        started = time.monotonic()
        deadline = started + timeout
        state = LabState(
            plan=lab,
            state_dir=str(sdir),
            cgroups=cgroups.plan(f"tinykube-lab-{uuid.uuid4().hex[:8]}"),
            started_at=time.time(),
        )
        state.save()
        steps = _Up(state, daemons)
        try:
            steps.timed("network", steps.network)
            steps.cgroups()
            steps.start_control_plane(api_port)
            steps.timed("node runtimes started", steps.start_node_runtimes)
            steps.timed("control plane ready", lambda: steps.wait_control_plane(deadline))
            steps.timed("nodes ready", lambda: steps.join_nodes(deadline))
            steps.check_alive()
        except BaseException:
            _teardown(state)
            raise
        state.ready_seconds = round(time.monotonic() - started, 2)
        state.save()
        return state


def _netns_pids(name: str) -> list[int]:
    res = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False, timeout=30)
    return [int(p) for p in res.stdout.split()]


def _teardown(state: LabState) -> list[str]:
    """Undo everything state records; returns what could not be removed (empty when clean)."""
    holders = [r for r in state.processes if r.role == "holder"]
    procs.stop([r for r in state.processes if r.role != "holder"])
    procs.stop(holders, grace=0.5)
    # What the daemons left: pods in the lab's cgroups, anything still inside the lab's namespaces.
    for _ in range(50):
        left = sorted(cgroups.pids(state.cgroups) | {p for n in state.netns for p in _netns_pids(n)})
        if not left:
            break
        procs.kill_pids(left)
        time.sleep(0.02)
    leftovers: list[str] = []
    if state.netns:
        batch = "".join(f"netns delete {n}\n" for n in state.netns)
        subprocess.run(["ip", "-force", "-batch", "-"], input=batch, capture_output=True, text=True, check=False)
    leftovers += [f"netns {n}" for n in state.netns if os.path.exists(os.path.join(NETNS_DIR, n))]
    leftovers += [f"cgroup {d}" for d in cgroups.remove(state.cgroups)]
    if not leftovers:
        shutil.rmtree(state.state_dir, ignore_errors=True)
    return leftovers


def down(state_dir: str | os.PathLike[str]) -> None:
    """Stop and remove the lab recorded in state_dir; NotRunning when there is none."""
    sdir = Path(state_dir)
    if not netns_state.exists(sdir):
        raise NotRunning(f"no lab runs from {sdir}")
    with _locked(sdir):
        leftovers = _teardown(netns_state.load(sdir))
    if leftovers:
        raise NetLabError("could not remove: " + ", ".join(leftovers))


def status(state_dir: str | os.PathLike[str]) -> Status:
    state = netns_state.load(state_dir)
    return Status(
        plan=state.plan,
        api=f"https://127.0.0.1:{state.api_port}",
        kubeconfig=state.kubeconfig,
        processes=[(r, procs.is_alive(r)) for r in state.processes],
        missing_netns=[n for n in state.netns if not os.path.exists(os.path.join(NETNS_DIR, n))],
        ready_seconds=state.ready_seconds,
        timings=state.timings,
    )
