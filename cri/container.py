"""Containers: create (validated spec + cgroup + overlay dirs), start (launcher → monitor), stop,
remove, status from the monitor's run.json/exit.json, ExecSync, resources, stats."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import time
from dataclasses import dataclass, replace
from typing import Any

from cri import validate
from cri.atomic import write_json
from cri.cgroups import CgroupStats
from cri.errors import AlreadyExists, InvalidArgument, NotFound, RuntimeFailure, Timeout
from cri.interfaces import wait_for
from cri.monitor import EXIT_FILE, RUN_FILE, attach_address
from cri.sandbox import Deps, Sandboxes, _remove_cgroup
from cri.state import ContainerState, SandboxState, check_container, check_sandbox
from cri.store import ContainerRecord, encode, sandbox_config
from cri.types import ContainerLaunch, ExecLaunch, MountSpec, container_from_wire, to_wire

EXEC_OUTPUT_CAP = 16 * 1024 * 1024
MONITOR_GRACE = 2.0


@dataclass(frozen=True)
class Observed:
    """A container's state as the files and the process table say right now."""

    state: ContainerState
    pid: int = 0
    monitor_pid: int = 0
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""


@dataclass
class ExecStream:
    """Descriptors of a running interactive exec (with a tty, stdin and stdout are the pty master)."""

    stdin: int
    stdout: int
    stderr: int
    status: int
    tty: bool

    def close(self) -> None:
        for fd in {self.stdin, self.stdout, self.stderr, self.status} - {-1}:
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass(frozen=True)
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


class Containers:
    def __init__(self, deps: Deps, sandboxes: Sandboxes) -> None:
        self.d = deps
        self.sandboxes = sandboxes

    def get(self, container_id: str) -> ContainerRecord:
        rec = self.d.store.containers.get(container_id)
        if rec is None:
            raise NotFound("container", container_id)
        return rec

    def of_sandbox(self, sandbox_id: str) -> list[ContainerRecord]:
        with self.d.store.lock:
            return [c for c in self.d.store.containers.values() if c.sandbox_id == sandbox_id]

    # ---- observe --------------------------------------------------------------------------------

    def observe(self, rec: ContainerRecord) -> Observed:
        directory = self.d.store.container_dir(rec.id)
        run = self.d.store.read_json(os.path.join(directory, RUN_FILE))
        ended = self.d.store.read_json(os.path.join(directory, EXIT_FILE))
        if run is None and ended is None:
            return Observed(ContainerState.CREATED)
        run = run or {}
        base = Observed(
            ContainerState.RUNNING,
            pid=int(run.get("pid", 0)),
            monitor_pid=int(run.get("monitor_pid", 0)),
            started_at=int(run.get("started_at", 0)),
        )
        if ended is None:
            if self.d.processes.alive(base.pid, int(run.get("start_time") or 0)):
                return base
            ended = self._await_exit_record(directory, base.monitor_pid)
        return replace(
            base,
            state=ContainerState.EXITED,
            finished_at=int(ended.get("finished_at", 0)),
            exit_code=int(ended.get("exit_code", 0)),
            reason=str(ended.get("reason", "")),
            message=str(ended.get("message", "")),
        )

    def _await_exit_record(self, directory: str, monitor_pid: int) -> dict[str, Any]:
        """The process is gone: its monitor writes exit.json and exits in a moment, unless it died
        too (then we record an unknown exit ourselves, once)."""
        path = os.path.join(directory, EXIT_FILE)
        if monitor_pid and not os.path.exists(path):
            self.d.processes.wait_exit(monitor_pid, MONITOR_GRACE)
        wait_for(lambda: os.path.exists(path), MONITOR_GRACE if not monitor_pid else 0.1)
        found = self.d.store.read_json(path)
        if found is not None:
            return found
        doc = {
            "exit_code": 255,
            "finished_at": time.time_ns(),
            "reason": "Unknown",
            "message": "the container's monitor went away before recording the exit",
        }
        write_json(path, doc)
        return doc

    # ---- lifecycle ------------------------------------------------------------------------------

    def create(self, sandbox_id: str, config: Any) -> str:
        sb = self.sandboxes.get(sandbox_id)
        check_sandbox(sandbox_id, self.sandboxes.state(sb), "create a container in")
        if not config.HasField("metadata") or not config.metadata.name:
            raise InvalidArgument("config.metadata.name must not be empty")
        if not config.image.image:
            raise InvalidArgument("config.image.image must not be empty")
        image_ref = config.image.image
        image = self.d.images.status(image_ref)
        if image is None:
            raise NotFound("image", image_ref)
        lower = list(reversed(self.d.images.layers(image_ref)))
        if not lower:
            raise InvalidArgument(f"image {image_ref} has no layers")
        image_config = self.d.images.config(image_ref)
        proc = validate.process(config, image_config, lower)
        sc = config.linux.security_context
        masked, readonly = validate.masked_and_readonly(sc)
        mounts = validate.mounts(config) + validate.devices(config)
        resources = validate.resources(config.linux.resources, default_pids_limit=self.d.default_pids_limit)
        sandbox_dir = self.d.store.sandbox_dir(sandbox_id)
        taken = {m.target for m in mounts}
        for name in ("resolv.conf", "hostname", "hosts"):
            if f"/etc/{name}" not in taken:
                mounts.append(MountSpec(source=os.path.join(sandbox_dir, name), target=f"/etc/{name}"))
        container_id = secrets.token_hex(32)
        name_key = (config.metadata.name, config.metadata.attempt)
        store = self.d.store
        with store.lock:
            for other in self.of_sandbox(sandbox_id):
                if (other.name, other.attempt) == name_key:
                    raise AlreadyExists(f"container {name_key[0]} attempt {name_key[1]} exists in sandbox: {other.id}")
            directory = store.container_dir(container_id)
            cgroup = f"{sb.pod_cgroup}/{container_id}"
            launch = ContainerLaunch(
                id=container_id,
                state_dir=directory,
                log_path=validate.log_path(
                    _sandbox_log_dir(sb), config.log_path, self.d.log_root, sandbox_id, container_id
                ),
                namespaces=self._namespaces(sb, sc),
                cgroup_procs=self.d.cgroups.procs_files(cgroup),
                oom_file=self.d.cgroups.oom_events_file(cgroup),
                rootfs=os.path.join(directory, "rootfs"),
                lower_dirs=lower,
                upper_dir=os.path.join(directory, "upper"),
                work_dir=os.path.join(directory, "work"),
                process=proc,
                mounts=mounts,
                masked_paths=masked,
                readonly_paths=readonly,
                readonly_rootfs=sc.readonly_rootfs,
                privileged=sc.privileged,
                stdin=config.stdin,
                stdin_once=config.stdin_once,
                tty=config.tty,
            )
            rec = ContainerRecord(
                id=container_id,
                sandbox_id=sandbox_id,
                name=config.metadata.name,
                attempt=config.metadata.attempt,
                created_at=time.time_ns(),
                config=encode(config.SerializeToString()),
                image=image_ref,
                image_ref=str(getattr(image, "id", image_ref)),
                image_id=str(getattr(image, "id", image_ref)),
                log_path=launch.log_path,
                cgroup=cgroup,
                launch=to_wire(launch),
                resources=to_wire(resources),
                stop_signal=str(getattr(image_config, "stop_signal", "") or ""),
            )
            try:
                with contextlib.ExitStack() as undo:
                    for sub in ("rootfs", "upper", "work"):
                        os.makedirs(os.path.join(directory, sub))
                    undo.callback(shutil.rmtree, directory, True)
                    self.d.cgroups.create(cgroup)
                    undo.callback(self.d.cgroups.remove, cgroup)
                    try:
                        self.d.cgroups.set_resources(cgroup, resources)
                    except (OSError, ValueError) as err:
                        raise InvalidArgument(f"config.linux.resources: {err}") from err
                    store.save_container(rec)
                    undo.pop_all()
            except OSError as err:
                raise RuntimeFailure(f"create container {config.metadata.name}: {err}") from err
        return container_id

    def _namespaces(self, sb: Any, sc: Any) -> dict[str, str]:
        pod = f"/proc/{sb.pid}/ns"
        ns = {
            "net": f"{pod}/net" if sb.modes.get("net") == "POD" else "",
            "uts": f"{pod}/uts" if sb.modes.get("net") == "POD" else "",
            "ipc": f"{pod}/ipc" if sb.modes.get("ipc") == "POD" else "",
        }
        mode = validate.MODE_NAMES[sc.namespace_options.pid]
        if mode == "NODE":
            ns["pid"] = ""
        elif mode == "POD" and sb.modes.get("pid") == "POD":
            ns["pid"] = f"{pod}/pid"
        elif mode == "TARGET":
            target = self.get(sc.namespace_options.target_id)
            seen = self.observe(target)
            if seen.state != ContainerState.RUNNING:
                raise InvalidArgument(f"namespace target {target.id} is not running")
            ns["pid"] = f"/proc/{seen.pid}/ns/pid"
        else:
            ns["pid"] = "new"
        return ns

    def start(self, container_id: str) -> None:
        rec = self.get(container_id)
        check_container(container_id, self.observe(rec).state, "start")
        sb = self.sandboxes.get(rec.sandbox_id)
        check_sandbox(sb.id, self.sandboxes.state(sb), "create a container in")
        try:
            self.d.launcher.request("container", rec.launch)
        except RuntimeFailure as err:
            # Like containerd: a container that failed to start is EXITED with the reason, not CREATED.
            doc = {"exit_code": 128, "finished_at": time.time_ns(), "reason": "StartError", "message": str(err)}
            write_json(os.path.join(self.d.store.container_dir(container_id), EXIT_FILE), doc)
            raise

    def stop(self, container_id: str, timeout: float) -> None:
        rec = self.get(container_id)
        seen = self.observe(rec)
        if seen.state == ContainerState.RUNNING:
            run = self.d.store.read_json(os.path.join(self.d.store.container_dir(rec.id), RUN_FILE)) or {}
            pid, start_time = seen.pid, int(run.get("start_time") or 0)
            if timeout > 0:
                self.d.processes.kill(pid, stop_signal(rec.stop_signal))
                self.d.processes.wait_exit(pid, timeout)
            if self.d.processes.alive(pid, start_time):
                self.d.processes.kill(pid, signal.SIGKILL)
                if not self.d.processes.wait_exit(pid, 10):
                    raise RuntimeFailure(f"container {container_id} did not die after SIGKILL")
            self.observe(rec)  # waits for the monitor's exit record
        for pid in self.d.cgroups.pids(rec.cgroup):
            self.d.processes.kill(pid, signal.SIGKILL)

    def remove(self, container_id: str) -> None:
        rec = self.d.store.containers.get(container_id)
        if rec is None:
            return
        self.stop(container_id, 0)
        _remove_cgroup(self.d, rec.cgroup)
        self.d.store.drop_container(container_id)

    # ---- exec, resources, logs, stats ----------------------------------------------------------

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> ExecResult:
        rec = self.get(container_id)
        seen = self.observe(rec)
        check_container(container_id, seen.state, "exec")
        if not cmd:
            raise InvalidArgument("cmd must not be empty")
        launch = container_from_wire(rec.launch)
        spec = ExecLaunch(
            container_pid=seen.pid, cgroup_procs=launch.cgroup_procs, process=replace(launch.process, args=list(cmd))
        )
        null = os.open(os.devnull, os.O_RDONLY)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        st_r, st_w = os.pipe()
        try:
            self.d.launcher.request("exec", to_wire(spec), fds=(null, out_w, err_w, st_w))
        except BaseException:
            for fd in (out_r, err_r, st_r):
                os.close(fd)
            raise
        finally:
            for fd in (null, out_w, err_w, st_w):
                os.close(fd)
        return _collect_exec(out_r, err_r, st_r, timeout, self.d.processes)

    def exec_stream(self, container_id: str, cmd: list[str], *, tty: bool) -> ExecStream:
        """Start an interactive exec; the caller pumps the returned descriptors and closes them."""
        rec = self.get(container_id)
        seen = self.observe(rec)
        check_container(container_id, seen.state, "exec")
        if not cmd:
            raise InvalidArgument("cmd must not be empty")
        launch = container_from_wire(rec.launch)
        process = replace(launch.process, args=list(cmd))
        if tty and not any(e.startswith("TERM=") for e in process.env):
            process.env = [*process.env, "TERM=xterm"]
        spec = ExecLaunch(container_pid=seen.pid, cgroup_procs=launch.cgroup_procs, process=process, tty=tty)
        st_r, st_w = os.pipe()
        if tty:
            # The command opens its pty on the container's devpts and sends us the master (init.take_terminal).
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            slave = theirs.detach()
            child_fds, stream = (slave, slave, slave, st_w), ExecStream(-1, -1, -1, st_r, tty=True)
        else:
            in_r, in_w = os.pipe()
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            child_fds, stream = (in_r, out_w, err_w, st_w), ExecStream(in_w, out_r, err_r, st_r, tty=False)
        try:
            self.d.launcher.request("exec", to_wire(spec), fds=child_fds)
        except BaseException:
            stream.close()
            raise
        finally:
            for fd in set(child_fds):
                os.close(fd)
        if tty:
            stream.stdin = stream.stdout = _receive_terminal(mine, stream)
        return stream

    def attach_address(self, container_id: str) -> str:
        """Where the container's monitor serves attach (checked to be running)."""
        rec = self.get(container_id)
        check_container(container_id, self.observe(rec).state, "attach to")
        return attach_address(container_id)

    def update_resources(self, container_id: str, linux_resources: Any) -> None:
        rec = self.get(container_id)
        check_container(container_id, self.observe(rec).state, "update resources of")
        res = validate.resources(linux_resources, default_pids_limit=self.d.default_pids_limit)
        try:
            self.d.cgroups.set_resources(rec.cgroup, res)
        except (OSError, ValueError) as err:
            raise InvalidArgument(f"resources: {err}") from err
        rec.resources = to_wire(res)
        self.d.store.save_container(rec)

    def reopen_log(self, container_id: str) -> None:
        rec = self.get(container_id)
        seen = self.observe(rec)
        if seen.state != ContainerState.RUNNING:
            raise InvalidArgument(f"container {container_id} is not running")
        self.d.processes.kill(seen.monitor_pid, signal.SIGUSR1)

    def stats(self, container_id: str) -> CgroupStats:
        rec = self.get(container_id)
        try:
            return self.d.cgroups.stats(rec.cgroup)
        except OSError:
            return CgroupStats()


def _sandbox_log_dir(sb: Any) -> str:
    return str(sandbox_config(sb).log_directory)


def stop_signal(name: str) -> int:
    """An image StopSignal (`SIGQUIT`, `QUIT` or `3`) as a number; SIGTERM when unset or unknown."""
    name = name.strip().upper()
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        return int(signal.SIGTERM)


def _collect_exec(out_r: int, err_r: int, st_r: int, timeout: float, processes: Any) -> ExecResult:
    """Read stdout/stderr (capped) and the status lines; past the deadline, kill and raise Timeout."""
    sel = selectors.DefaultSelector()
    buffers: dict[int, bytearray] = {out_r: bytearray(), err_r: bytearray(), st_r: bytearray()}
    for fd in buffers:
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    try:
        while sel.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                status = _status_lines(buffers[st_r])
                if "pid" in status:
                    processes.kill(int(status["pid"]), signal.SIGKILL)
                raise Timeout(f"command timed out after {timeout}s")
            for key, _ in sel.select(wait):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                elif len(buffers[key.fd]) < EXEC_OUTPUT_CAP:
                    buffers[key.fd] += chunk[: EXEC_OUTPUT_CAP - len(buffers[key.fd])]
    finally:
        sel.close()
        for fd in buffers:
            os.close(fd)
    status = _status_lines(buffers[st_r])
    if "error" in status:
        raise RuntimeFailure(f"exec: {status['error']}")
    if "exit_code" not in status:
        raise RuntimeFailure("exec: the command's monitor ended without an exit code")
    return ExecResult(bytes(buffers[out_r]), bytes(buffers[err_r]), int(status["exit_code"]))


def _receive_terminal(channel: socket.socket, stream: ExecStream) -> int:
    """The pty master an exec'd command sends once it has its terminal; or its startup error."""
    with channel:
        channel.settimeout(30)
        try:
            _, fds, _, _ = socket.recv_fds(channel, 16, 1)
        except OSError as err:
            stream.close()
            raise RuntimeFailure(f"exec: no terminal from the command: {err}") from err
    if not fds:
        with os.fdopen(os.dup(stream.status), "rb") as f:
            status = _status_lines(bytearray(f.read()))
        stream.close()
        raise RuntimeFailure(f"exec: {status.get('error', 'the command exited before it had a terminal')}")
    return fds[0]


def _status_lines(data: bytearray) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for line in bytes(data).splitlines():
        with contextlib.suppress(ValueError):
            merged.update(json.loads(line))
    return merged


__all__ = ["Containers", "ExecResult", "ExecStream", "Observed", "SandboxState"]
