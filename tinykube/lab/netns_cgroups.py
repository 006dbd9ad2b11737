"""The lab's cgroup subtree: `<own cgroup>/<name>/<owner>` in every mounted hierarchy (v1 controllers,
the unified v2 mount, or a pure v2 host's single tree), nested under the cgroup the lab command runs
in so the lab stays inside whatever limits its caller has. Every daemon joins its owner's cgroup
before it runs, so whatever it forks (a node's pods included) is found there again by `down`.
cgroups are not made private by namespaces: the name carries a random suffix and goes in the state.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

CGROUP_FS = "/sys/fs/cgroup"


def hierarchies(cgroup_fs: str = CGROUP_FS) -> list[str]:
    """Mounted hierarchies, one path each (v1 co-mounts like cpu,cpuacct appear once)."""
    if os.path.exists(os.path.join(cgroup_fs, "cgroup.procs")):
        return [cgroup_fs]  # a pure v2 host, or a single v1 hierarchy mounted at the root
    found: dict[str, None] = {}
    for entry in sorted(os.scandir(cgroup_fs), key=lambda e: e.name) if os.path.isdir(cgroup_fs) else []:
        real = os.path.realpath(entry.path)
        if os.path.exists(os.path.join(real, "cgroup.procs")):
            found[real] = None
    return list(found)


def _read(path: str) -> str:
    """The file's text, or "" when it is gone: a cgroup removed while we walk it (cgroup v1 answers
    ENODEV to a read of a deleted cgroup's files) or a process that exited."""
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    except OSError as err:
        if err.errno == errno.ENODEV:
            return ""
        raise


def own_path(hierarchy: str, pid: int | None = None) -> str:
    """The cgroup (relative path) pid is in within hierarchy: the /proc/PID/cgroup entry whose
    directory there lists pid (matching entries to mounts by controller names is fragile)."""
    pid = os.getpid() if pid is None else pid
    for line in _read(f"/proc/{pid}/cgroup").splitlines():
        rel = line.split(":", 2)[2].lstrip("/")
        if str(pid) in _read(os.path.join(hierarchy, rel, "cgroup.procs")).split():
            return rel
    return ""


@dataclass
class LabCgroups:
    """`name` is unique per lab; `dirs` every `<hierarchy>/<path>/<name>` the lab made or may find
    made by a runtime it was told to use `runtime_parent` (one path for every hierarchy)."""

    name: str
    runtime_parent: str = ""
    dirs: list[str] = field(default_factory=list)

    def path(self, owner: str) -> str:
        """Path (relative to every hierarchy) of an owner's cgroup, for a runtime's --cgroup-root."""
        return "/".join(p for p in (self.runtime_parent, self.name, owner) if p)


def plan(name: str, cgroup_fs: str = CGROUP_FS) -> LabCgroups:
    """Where the subtree goes. A runtime takes one cgroup path for all hierarchies: use the one the
    memory controller (or v2) puts us in, the controller that limits a container host most."""
    found = hierarchies(cgroup_fs)
    own = {h: own_path(h) for h in found}
    memory = [h for h in found if os.path.basename(h) == "memory"] or [h for h in found if h.endswith("unified")]
    runtime_parent = own[memory[0]] if memory else ""
    dirs = {os.path.join(h, own[h], name): None for h in found}
    dirs.update({os.path.join(h, runtime_parent, name): None for h in found})
    return LabCgroups(name=name, runtime_parent=runtime_parent, dirs=list(dirs))


def _inherit_cpuset(path: str) -> None:
    """A new v1 cpuset cgroup starts with no CPUs or memory nodes and refuses tasks (ENOSPC)."""
    for key in ("cpuset.cpus", "cpuset.mems"):
        own = os.path.join(path, key)
        if os.path.exists(own) and not _read(own).strip():
            with open(own, "w") as f:
                f.write(_read(os.path.join(os.path.dirname(path), key)).strip())


def create(cg: LabCgroups, owners: Sequence[str], cgroup_fs: str = CGROUP_FS) -> None:
    """Make `<own path>/<name>/<owner>` in every hierarchy (owners may be nested: "node1/daemons")."""
    for hierarchy in hierarchies(cgroup_fs):
        base = os.path.join(hierarchy, own_path(hierarchy), cg.name)
        _mkdir(base)
        for owner in owners:
            path = base
            for part in owner.split("/"):
                path = os.path.join(path, part)
                _mkdir(path)


def _mkdir(path: str) -> None:
    if not os.path.isdir(path):
        os.mkdir(path)
        _inherit_cpuset(path)


def procs_files(cg: LabCgroups, owner: str, cgroup_fs: str = CGROUP_FS) -> list[str]:
    """The cgroup.procs files a process writes its pid to, to join owner's cgroup everywhere."""
    files = []
    for hierarchy in hierarchies(cgroup_fs):
        path = os.path.join(hierarchy, own_path(hierarchy), cg.name, owner, "cgroup.procs")
        if os.path.exists(path):
            files.append(path)
    return files


def _walk(path: str) -> Iterator[str]:
    """Directories under path, deepest first."""
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda t: -t[0].count(os.sep)):
        yield dirpath


def pids(cg: LabCgroups) -> set[int]:
    """Every process in the subtree, in any hierarchy."""
    found: set[int] = set()
    for base in cg.dirs:
        for d in _walk(base) if os.path.isdir(base) else ():
            found.update(int(p) for p in _read(os.path.join(d, "cgroup.procs")).split())
    return found


def remove(cg: LabCgroups, timeout: float = 5.0) -> list[str]:
    """rmdir the subtree bottom-up (retrying while the last processes exit); returns what is left."""
    left: list[str] = []
    for base in cg.dirs:
        if not base.rstrip("/").endswith("/" + cg.name):
            continue  # never remove anything not named after this lab
        for d in _walk(base) if os.path.isdir(base) else ():
            deadline = time.monotonic() + timeout
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        left.append(d)
                        break
                    time.sleep(0.02)
    return left
