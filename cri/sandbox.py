"""Pod sandboxes: a pause-holder owning the pod's namespaces, its cgroup, DNS files and network."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from typing import Any

from cri import validate
from cri.cgroups import CgroupManager
from cri.errors import AlreadyExists, InvalidArgument, NotFound, RuntimeFailure
from cri.interfaces import ImageSource, Network, Processes
from cri.launcher import Launcher
from cri.state import SandboxState
from cri.store import SandboxRecord, Store, encode
from cri.types import SandboxLaunch, to_wire

HOLDER_EXIT_TIMEOUT = 5.0


@dataclass
class Deps:
    """Everything the sandbox and container operations touch (real ones in the daemon, fakes in tests)."""

    store: Store
    launcher: Launcher
    cgroups: CgroupManager
    network: Network
    images: ImageSource
    processes: Processes
    log_root: str
    cgroup_root: str = "tinykube"
    pause_binary: str = ""
    default_pids_limit: int = 0


class Sandboxes:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    def get(self, sandbox_id: str) -> SandboxRecord:
        rec = self.d.store.sandboxes.get(sandbox_id)
        if rec is None:
            raise NotFound("sandbox", sandbox_id)
        return rec

    def state(self, rec: SandboxRecord) -> SandboxState:
        if rec.state == SandboxState.READY.value and self.d.processes.alive(rec.pid, rec.start_time):
            return SandboxState.READY
        return SandboxState.NOTREADY

    def netns_path(self, rec: SandboxRecord) -> str:
        if rec.modes.get("net") != "POD" or not self.d.processes.alive(rec.pid, rec.start_time):
            return ""
        return f"/proc/{rec.pid}/ns/net"

    @staticmethod
    def cni_args(rec: SandboxRecord) -> dict[str, str]:
        return {
            "IgnoreUnknown": "1",
            "K8S_POD_NAMESPACE": rec.namespace,
            "K8S_POD_NAME": rec.name,
            "K8S_POD_INFRA_CONTAINER_ID": rec.id,
            "K8S_POD_UID": rec.uid,
        }

    def run(self, config: Any, runtime_handler: str = "") -> str:
        validate.check_sandbox_config(config, runtime_handler)
        md = config.metadata
        key = (md.name, md.namespace, md.uid, md.attempt)
        store = self.d.store
        sandbox_id = secrets.token_hex(32)
        modes = validate.sandbox_modes(config)
        with store.lock:
            for other in store.sandboxes.values():
                if (other.name, other.namespace, other.uid, other.attempt) == key:
                    raise AlreadyExists(
                        f"sandbox name {md.name}_{md.namespace}_{md.uid}_{md.attempt} is taken by {other.id}"
                    )
            # Reserve the name while we build: a record in memory only, saved at the end.
            rec = SandboxRecord(
                id=sandbox_id,
                name=md.name,
                namespace=md.namespace,
                uid=md.uid,
                attempt=md.attempt,
                created_at=time.time_ns(),
                config=encode(config.SerializeToString()),
                modes=modes,
                runtime_handler=runtime_handler,
            )
            store.sandboxes[sandbox_id] = rec
        try:
            with contextlib.ExitStack() as undo:
                undo.callback(store.sandboxes.pop, sandbox_id, None)
                self._build(rec, config, undo)
                store.save_sandbox(rec)
                undo.pop_all()
        except OSError as err:
            raise RuntimeFailure(f"run sandbox {md.namespace}/{md.name}: {err}") from err
        return sandbox_id

    def _build(self, rec: SandboxRecord, config: Any, undo: contextlib.ExitStack) -> None:
        """Each step registers its undo; the caller pops them all only once the record is saved."""
        directory = self.d.store.sandbox_dir(rec.id)
        os.makedirs(directory)
        undo.callback(shutil.rmtree, directory, True)
        resolv = validate.resolv_conf(config.dns_config)
        if not resolv or rec.modes["net"] == "NODE":
            with contextlib.suppress(OSError), open("/etc/resolv.conf") as f:
                resolv = resolv or f.read()
        _write(os.path.join(directory, "resolv.conf"), resolv)
        hostname = config.hostname or (os.uname().nodename if rec.modes["net"] == "NODE" else rec.name[:63])
        _write(os.path.join(directory, "hostname"), hostname + "\n")
        _write(os.path.join(directory, "hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")

        rec.pod_cgroup = config.linux.cgroup_parent.strip("/") or f"{self.d.cgroup_root}/pod-{rec.id[:16]}"
        rec.owns_pod_cgroup = self.d.cgroups.create(rec.pod_cgroup)
        if rec.owns_pod_cgroup:
            undo.callback(self.d.cgroups.remove, rec.pod_cgroup)
            # The pod's total (CRI `resources`) caps the pod cgroup when the kubelet left it to us.
            if config.linux.HasField("resources"):
                try:
                    self.d.cgroups.set_resources(rec.pod_cgroup, validate.resources(config.linux.resources))
                except (OSError, ValueError) as err:
                    raise InvalidArgument(f"config.linux.resources: {err}") from err
        rec.pause_cgroup = f"{rec.pod_cgroup}/{rec.id}"
        self.d.cgroups.create(rec.pause_cgroup)
        undo.callback(self.d.cgroups.remove, rec.pause_cgroup)

        launch = SandboxLaunch(
            id=rec.id,
            hostname=hostname,
            new_net=rec.modes["net"] == "POD",
            new_ipc=rec.modes["ipc"] == "POD",
            new_uts=rec.modes["net"] == "POD",
            new_pid=rec.modes["pid"] == "POD",
            cgroup_procs=self.d.cgroups.procs_files(rec.pause_cgroup),
            pause_binary=self.d.pause_binary,
            sysctls=validate.sysctls(config),
        )
        reply = self.d.launcher.request("sandbox", to_wire(launch))
        rec.pid, rec.start_time = int(reply["pid"]), int(reply["start_time"])
        undo.callback(self._kill_holder, rec)

        if rec.modes["net"] == "POD":
            args = self.cni_args(rec)
            ports = validate.port_mappings(config)
            netns = f"/proc/{rec.pid}/ns/net"
            rec.ips = self.d.network.attach(rec.id, netns, args=args, port_mappings=ports)
            rec.network_attached = True
            undo.callback(self.d.network.detach, rec.id, netns, args=args, port_mappings=ports)

    def _kill_holder(self, rec: SandboxRecord) -> None:
        if self.d.processes.alive(rec.pid, rec.start_time):
            self.d.processes.kill(rec.pid, signal.SIGKILL)
            if not self.d.processes.wait_exit(rec.pid, HOLDER_EXIT_TIMEOUT):
                raise RuntimeFailure(f"pause holder {rec.pid} of sandbox {rec.id} did not exit")

    def stop(self, rec: SandboxRecord, config: Any) -> None:
        """Network down, holder gone, state NOTREADY (containers are stopped by the caller first)."""
        if rec.network_attached:
            self.d.network.detach(
                rec.id, self.netns_path(rec), args=self.cni_args(rec), port_mappings=validate.port_mappings(config)
            )
            rec.network_attached = False
            self.d.store.save_sandbox(rec)
        self._kill_holder(rec)
        for pid in self.d.cgroups.pids(rec.pause_cgroup):
            self.d.processes.kill(pid, signal.SIGKILL)
        if rec.state != SandboxState.NOTREADY.value:
            rec.state = SandboxState.NOTREADY.value
            self.d.store.save_sandbox(rec)

    def remove(self, rec: SandboxRecord) -> None:
        _remove_cgroup(self.d, rec.pause_cgroup)
        if rec.owns_pod_cgroup:
            _remove_cgroup(self.d, rec.pod_cgroup)
        self.d.store.drop_sandbox(rec.id)


def _remove_cgroup(d: Deps, path: str) -> None:
    """Kill stragglers and rmdir; retried briefly since exits land asynchronously."""
    deadline = time.monotonic() + 5
    while True:
        try:
            d.cgroups.remove(path)
            return
        except OSError as err:
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"cannot remove cgroup {path}: {err}") from err
            for pid in d.cgroups.pids(path):
                d.processes.kill(pid, signal.SIGKILL)
            time.sleep(0.01)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
