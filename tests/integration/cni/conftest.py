"""A "node" per test: a host netns of its own (bridge, host veths and iptables rules live there), our
plugins installed into tmp_path, and one of four ways to run them: the executables talking to a
resident agent; the runtime calling the agent's socket itself (no exec); the executables alone (no
agent: they import pyroute2 themselves); in-process handlers (the fast path a runtime can take).
Pods are namespaces made with `netns_factory`.

The test's main thread enters the host netns for the test's duration (a netns is per thread); every
plugin process, the agent and iptables inherit it, and it is restored even when the test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cni import invoke, registry
from cni.client import agent_handlers
from cni.install import install
from cni.invoke import Handler, NetworkConfigList
from cni.netlink import thread_in_netns
from tests.support.namespaces import NetNS

REFERENCE_BIN = "/usr/lib/cni"
MODES = ("agent", "agent-socket", "no-agent", "in-process")


@dataclass
class Node:
    host: NetNS
    bin_dir: str
    conf_dir: str
    data_dir: str
    mode: str
    conf: NetworkConfigList
    handlers: Mapping[str, Handler] | None = None
    agent: subprocess.Popen[bytes] | None = None
    cache_dir: str = ""
    extra_bins: list[str] = field(default_factory=list)

    @property
    def bin_dirs(self) -> list[str]:
        return [self.bin_dir, *self.extra_bins]

    def add(self, pod: NetNS, cid: str, ifname: str = "eth0", conf: NetworkConfigList | None = None) -> dict[str, Any]:
        return invoke.add(
            conf or self.conf, cid, pod.path, ifname, self.bin_dirs, handlers=self.handlers, cache_dir=self.cache_dir
        )

    def delete(self, pod: NetNS | None, cid: str, ifname: str = "eth0", conf: NetworkConfigList | None = None) -> None:
        invoke.delete(
            conf or self.conf,
            cid,
            pod.path if pod else "",
            ifname,
            self.bin_dirs,
            handlers=self.handlers,
            cache_dir=self.cache_dir,
        )

    def check(self, pod: NetNS, cid: str, ifname: str = "eth0", conf: NetworkConfigList | None = None) -> None:
        invoke.check(
            conf or self.conf, cid, pod.path, ifname, self.bin_dirs, handlers=self.handlers, cache_dir=self.cache_dir
        )

    def exec_plugin(self, plugin: str, env: Mapping[str, str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        """Run one plugin executable by hand (raw spec I/O), in the host netns."""
        full_env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **env}
        return subprocess.run(
            [os.path.join(self.bin_dir, plugin)],
            input=stdin,
            env=full_env,
            capture_output=True,
            timeout=60,
            check=False,
        )

    def reservations(self) -> list[str]:
        d = Path(self.data_dir) / self.conf.name
        return sorted(p.name for p in d.iterdir() if p.name[0].isdigit()) if d.is_dir() else []

    def host_links(self) -> str:
        return self.host.run(["ip", "-o", "link"]).stdout

    def wait_links_gone(self, text: str, timeout: float = 10.0) -> None:
        """Long-lived handlers delete veths in the background after DEL returns: wait for that."""
        deadline = time.monotonic() + timeout
        while text in self.host_links():
            assert time.monotonic() < deadline, f"{text} still present on the host"
            time.sleep(0.05)


def conflist_doc(data_dir: str, *, name: str = "tknet", subnet: str = "10.99.0.0/24", **bridge: Any) -> dict[str, Any]:
    plugin = {
        "type": registry.BRIDGE,
        "bridge": "cni0",
        "isGateway": True,
        "isDefaultGateway": True,
        "ipam": {"type": registry.HOST_LOCAL, "ranges": [[{"subnet": subnet}]], "dataDir": data_dir},
    }
    plugin.update(bridge)
    return {"cniVersion": "1.1.0", "name": name, "plugins": [plugin]}


def wait_for_socket(path: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"agent exited with {proc.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.02)
    raise TimeoutError("agent socket did not appear")


@contextlib.contextmanager
def running_agent(socket_path: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m cni.agent` in the calling thread's netns; its stderr goes to `log` (never a pipe
    nobody reads, which could fill up and stall the agent)."""
    root = str(Path(invoke.__file__).resolve().parent.parent)
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "cni.agent", "--socket", socket_path], cwd=root, stderr=sink)
    try:
        wait_for_socket(socket_path, proc, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def make_node(tmp_path: Path, host: NetNS, mode: str, **conf: Any) -> Iterator[Node]:
    bin_dir, conf_dir, data_dir = (str(tmp_path / d) for d in ("bin", "net.d", "ipam"))
    socket_path = str(tmp_path / "cni.sock")
    install(bin_dir, conf_dir, pod_cidr="10.99.0.0/24", agent_socket=socket_path, data_dir=data_dir)
    Path(conf_dir, "10-tinykube.conflist").write_text(json.dumps(conflist_doc(data_dir, **conf)))
    fd = os.open(host.path, os.O_RDONLY)
    try:
        with thread_in_netns(fd), contextlib.ExitStack() as stack:
            node = Node(
                host=host,
                bin_dir=bin_dir,
                conf_dir=conf_dir,
                data_dir=data_dir,
                mode=mode,
                conf=invoke.load_conf_dir(conf_dir),
                cache_dir=str(tmp_path / "cache"),
            )
            if mode in ("agent", "agent-socket"):
                node.agent = stack.enter_context(running_agent(socket_path, tmp_path / "agent.log"))
            if mode == "agent-socket":
                node.handlers = agent_handlers(socket_path)
            elif mode == "in-process":
                handlers = registry.handlers()
                stack.callback(handlers.close)
                node.handlers = handlers
            yield node
    finally:
        os.close(fd)


@pytest.fixture(params=MODES)
def node(request: pytest.FixtureRequest, tmp_path: Path, netns_factory: Callable[[str], NetNS]) -> Iterator[Node]:
    """A node in each of the three execution modes."""
    with make_node(tmp_path, netns_factory("host"), request.param) as n:
        yield n


@pytest.fixture
def agent_node(tmp_path: Path, netns_factory: Callable[[str], NetNS]) -> Iterator[Node]:
    """A node whose executables talk to an agent (the common, fast mode)."""
    with make_node(tmp_path, netns_factory("host"), "agent") as n:
        yield n
