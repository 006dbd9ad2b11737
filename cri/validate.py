"""CRI requests → our specs, refusing what is malformed or unsupported with a message naming the
field (INVALID_ARGUMENT at the edge). Pure apart from reading /etc/passwd and /etc/group of an image."""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Sequence
from typing import Any

from cri import caps
from cri.cgroups import Resources
from cri.cgroups.interfaces import check_path
from cri.errors import InvalidArgument
from cri.rootfs import DEFAULT_MASKED, DEFAULT_READONLY
from cri.types import MountSpec, ProcessSpec

MODE_NAMES = {0: "POD", 1: "CONTAINER", 2: "NODE", 3: "TARGET"}
PROPAGATION = {0: "private", 1: "rslave", 2: "rshared"}
_HOSTNAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,62})?$", re.IGNORECASE)
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SECCOMP_RUNTIME_DEFAULT, SECCOMP_UNCONFINED, SECCOMP_LOCALHOST = 0, 1, 2


def sandbox_modes(config: Any) -> dict[str, str]:
    ns = config.linux.security_context.namespace_options
    return {"net": MODE_NAMES[ns.network], "pid": MODE_NAMES[ns.pid], "ipc": MODE_NAMES[ns.ipc]}


def check_sandbox_config(config: Any, runtime_handler: str) -> None:
    md = config.metadata
    if not config.HasField("metadata"):
        raise InvalidArgument("config.metadata is required")
    for field in ("name", "namespace", "uid"):
        if not getattr(md, field):
            raise InvalidArgument(f"config.metadata.{field} must not be empty")
    if runtime_handler not in ("", "tinykube"):
        raise InvalidArgument(f"unknown runtime handler {runtime_handler!r}")
    if config.hostname and not _HOSTNAME.match(config.hostname):
        raise InvalidArgument(f"config.hostname {config.hostname!r} is not a valid hostname")
    if config.linux.cgroup_parent:
        try:
            check_path(config.linux.cgroup_parent)
        except ValueError as err:
            raise InvalidArgument(f"config.linux.cgroup_parent: {err}") from err
    modes = sandbox_modes(config)
    if modes["net"] not in ("POD", "NODE") or modes["ipc"] not in ("POD", "NODE"):
        raise InvalidArgument("namespace_options: network and ipc must be POD or NODE")
    if modes["pid"] == "TARGET":
        raise InvalidArgument("namespace_options.pid TARGET is only valid for containers")
    if config.linux.security_context.namespace_options.userns_options.mode == 0 and (
        config.linux.security_context.namespace_options.userns_options.uids
    ):
        raise InvalidArgument("user namespaces are not supported")
    for server in config.dns_config.servers:
        try:
            ipaddress.ip_address(server)
        except ValueError as err:
            raise InvalidArgument(f"config.dns_config.servers: {server!r} is not an IP address") from err
    sysctls(config)
    for pm in config.port_mappings:
        if not 0 <= pm.host_port <= 65535 or not 0 < pm.container_port <= 65535:
            raise InvalidArgument(f"config.port_mappings: bad port {pm.container_port}→{pm.host_port}")


# Sysctls a pod may set because they are namespaced (Kubernetes "safe" and namespaced "unsafe" ones).
_IPC_SYSCTLS = ("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")


def sysctls(config: Any) -> dict[str, str]:
    """Pod sysctls, refused unless the namespace they belong to is the pod's own."""
    modes = sandbox_modes(config)
    out = {}
    for key, value in sorted(config.linux.sysctls.items()):
        name = key.replace("/", ".")
        if not re.fullmatch(r"[a-z0-9_.\-]+", name) or ".." in name:
            raise InvalidArgument(f"sysctl {key!r} is not a valid name")
        if name.startswith("net."):
            owner = "net"
        elif name.startswith(_IPC_SYSCTLS):
            owner = "ipc"
        elif name in ("kernel.hostname", "kernel.domainname"):
            owner = "net"  # the UTS namespace is the pod's when its network is
        else:
            raise InvalidArgument(f"sysctl {key!r} is not namespaced: it would change the node")
        if modes[owner] != "POD":
            raise InvalidArgument(f"sysctl {key!r} needs the pod's own {owner} namespace")
        out[name] = value
    return out


def resolv_conf(dns: Any) -> str:
    lines = [f"nameserver {s}" for s in dns.servers]
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n" if lines else ""


def port_mappings(config: Any) -> list[dict[str, Any]]:
    """CNI `portMappings` capability arguments (CNI CONVENTIONS.md)."""
    protocols = {0: "tcp", 1: "udp", 2: "sctp"}
    return [
        {
            "hostPort": pm.host_port,
            "containerPort": pm.container_port,
            "protocol": protocols[pm.protocol],
            "hostIP": pm.host_ip,
        }
        for pm in config.port_mappings
        if pm.host_port
    ]


def resources(res: Any, *, default_pids_limit: int = 0) -> Resources:
    for field in ("cpu_period", "cpu_quota", "cpu_shares", "memory_limit_in_bytes", "memory_swap_limit_in_bytes"):
        if getattr(res, field) < 0 and not (field == "cpu_quota" and getattr(res, field) == -1):
            raise InvalidArgument(f"resources.{field} must not be negative")
    if 0 < res.memory_limit_in_bytes < 4096 * 16:
        raise InvalidArgument(f"resources.memory_limit_in_bytes {res.memory_limit_in_bytes} is below 64KiB")
    unified = dict(res.unified)
    pids = int(unified.pop("pids.max")) if unified.get("pids.max", "").isdigit() else default_pids_limit
    return Resources(
        cpu_shares=res.cpu_shares,
        cpu_quota=max(res.cpu_quota, 0),
        cpu_period=res.cpu_period,
        memory_limit=res.memory_limit_in_bytes,
        memory_swap_limit=res.memory_swap_limit_in_bytes,
        pids_limit=pids,
        cpuset_cpus=res.cpuset_cpus,
        cpuset_mems=res.cpuset_mems,
        unified=unified,
    )


def _read_db(lower_dirs: Sequence[str], name: str) -> list[list[str]]:
    """/etc/passwd or /etc/group of the image: the topmost layer that has the file wins."""
    for layer in lower_dirs:
        path = os.path.join(layer, "etc", name)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, errors="replace") as f:
                return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    return []


def resolve_user(spec: str, lower_dirs: Sequence[str]) -> tuple[int, int]:
    """`uid`, `uid:gid`, `name` or `name:group` (image config `User`) → (uid, gid) via the image."""
    user, _, group = spec.partition(":")
    passwd = _read_db(lower_dirs, "passwd")
    uid, gid = 0, 0
    if user.isdigit():
        uid = int(user)
        gid = next((int(e[3]) for e in passwd if len(e) > 3 and e[2] == user and e[3].isdigit()), 0)
    elif user:
        entry = next((e for e in passwd if e[0] == user and len(e) > 3), None)
        if entry is None:
            raise InvalidArgument(f"user {user!r} not found in the image's /etc/passwd")
        uid, gid = int(entry[2]), int(entry[3])
    if group.isdigit():
        gid = int(group)
    elif group:
        entry = next((e for e in _read_db(lower_dirs, "group") if e[0] == group and len(e) > 2), None)
        if entry is None:
            raise InvalidArgument(f"group {group!r} not found in the image's /etc/group")
        gid = int(entry[2])
    return uid, gid


def merge_env(image_env: Sequence[str], envs: Any) -> list[str]:
    merged: dict[str, str] = {}
    for entry in image_env:
        key, _, value = entry.partition("=")
        merged[key] = value
    for kv in envs:
        if not kv.key:
            raise InvalidArgument("config.envs: an environment variable has an empty name")
        merged[kv.key] = kv.value
    env = [f"{k}={v}" for k, v in merged.items()]
    if "PATH" not in merged:
        env.insert(0, DEFAULT_PATH_ENV)
    return env


def seccomp_enabled(sc: Any) -> bool:
    if sc.privileged:
        return False
    if sc.HasField("seccomp"):
        kind = sc.seccomp.profile_type
        if kind == SECCOMP_LOCALHOST:
            raise InvalidArgument("seccomp Localhost profiles are not supported (use RuntimeDefault or Unconfined)")
        return bool(kind == SECCOMP_RUNTIME_DEFAULT)
    path = sc.seccomp_profile_path
    if path.startswith("localhost/"):
        raise InvalidArgument("seccomp localhost/ profiles are not supported")
    return path in ("runtime/default", "docker/default")


def process(config: Any, image_config: Any, lower_dirs: Sequence[str]) -> ProcessSpec:
    """args (Kubernetes command/args over image entrypoint/cmd), env, cwd, identity, privileges."""
    entrypoint = list(image_config.entrypoint)
    if config.command:
        args = [*config.command, *config.args]
    elif config.args:
        args = [*entrypoint, *config.args]
    else:
        args = [*entrypoint, *image_config.cmd]
    if not args:
        raise InvalidArgument("no command: config.command, config.args and the image's entrypoint/cmd are all empty")
    sc = config.linux.security_context
    if sc.HasField("run_as_group") and not (sc.HasField("run_as_user") or sc.run_as_username):
        raise InvalidArgument("run_as_group needs run_as_user or run_as_username")
    if sc.HasField("run_as_user") and sc.run_as_username:
        raise InvalidArgument("run_as_user and run_as_username are mutually exclusive")
    if sc.HasField("run_as_user"):
        if sc.run_as_user.value < 0:
            raise InvalidArgument("run_as_user must not be negative")
        uid, gid = resolve_user(str(sc.run_as_user.value), lower_dirs)
    elif sc.run_as_username:
        uid, gid = resolve_user(sc.run_as_username, lower_dirs)
    else:
        uid, gid = resolve_user(image_config.user, lower_dirs)
    if sc.HasField("run_as_group"):
        gid = sc.run_as_group.value
    cwd = config.working_dir or image_config.working_dir or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"config.working_dir {cwd!r} must be an absolute path")
    names = caps.effective_set(
        privileged=sc.privileged, add=sc.capabilities.add_capabilities, drop=sc.capabilities.drop_capabilities
    )
    ambient = sorted(caps.parse_name(n) for n in sc.capabilities.add_ambient_capabilities)
    return ProcessSpec(
        args=args,
        env=merge_env(image_config.env, config.envs),
        cwd=cwd,
        uid=uid,
        gid=gid,
        groups=sorted({gid, *(int(g) for g in sc.supplemental_groups)}),
        caps=sorted(set(names) | set(ambient)),
        ambient_caps=ambient,
        no_new_privs=sc.no_new_privs,
        seccomp=seccomp_enabled(sc),
    )


def mounts(config: Any) -> list[MountSpec]:
    out = []
    for m in config.mounts:
        if not m.container_path.startswith("/"):
            raise InvalidArgument(f"mount container_path {m.container_path!r} must be absolute")
        if m.HasField("image") and m.image.image:
            raise InvalidArgument("image volume mounts are not supported")
        source = os.path.realpath(m.host_path) if m.host_path else ""
        if not source or not os.path.exists(source):
            raise InvalidArgument(f"mount host_path {m.host_path!r} does not exist")
        out.append(
            MountSpec(
                source=source, target=m.container_path, readonly=m.readonly, propagation=PROPAGATION[m.propagation]
            )
        )
    return out


def devices(config: Any) -> list[MountSpec]:
    """Host device nodes bound into the container's /dev (the devices cgroup is left open)."""
    out = []
    for dev in config.devices:
        if not dev.container_path.startswith("/dev/"):
            raise InvalidArgument(f"device container_path {dev.container_path!r} must be under /dev/")
        source = os.path.realpath(dev.host_path)
        try:
            mode = os.stat(source).st_mode
        except OSError as err:
            raise InvalidArgument(f"device host_path {dev.host_path!r}: {err.strerror}") from err
        if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
            raise InvalidArgument(f"device host_path {dev.host_path!r} is not a device node")
        readonly = "w" not in (dev.permissions or "rwm")
        out.append(MountSpec(source=source, target=dev.container_path, readonly=readonly))
    return out


def masked_and_readonly(sc: Any) -> tuple[list[str], list[str]]:
    """Kubelet sends the lists (empty for procMount: Unmasked is only valid with privileged)."""
    if sc.privileged:
        return [], []
    masked = list(sc.masked_paths) or list(DEFAULT_MASKED)
    readonly = list(sc.readonly_paths) or list(DEFAULT_READONLY)
    return masked, readonly


def log_path(sandbox_log_dir: str, relative: str, log_root: str, sandbox_id: str, container_id: str) -> str:
    if relative and (relative.startswith("/") or ".." in relative.split("/")):
        raise InvalidArgument(f"config.log_path {relative!r} must be relative without '..'")
    base = sandbox_log_dir or os.path.join(log_root, sandbox_id)
    return os.path.join(base, relative or f"{container_id}.log")
