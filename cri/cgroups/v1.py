"""cgroup v1 driver: one directory per controller hierarchy; values through cgroupspy's controllers."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from cgroupspy.controllers import CpuAcctController, CpuController, MemoryController

from cri.cgroups.interfaces import CgroupManager, CgroupStats, Resources, check_path, read_int, read_kv, write

CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio")
_UNLIMITED = 1 << 62  # memory.limit_in_bytes reads back as a page-rounded huge number when unset


@dataclass(frozen=True)
class _Node:
    """What cgroupspy's controllers need of a node: its directory (bytes, as cgroupspy's file names are)."""

    full_path: bytes


class V1Manager:
    version = 1

    def __init__(self, root: str = "/sys/fs/cgroup", controllers: tuple[str, ...] = CONTROLLERS) -> None:
        self.root = root
        # Co-mounted controllers (cpu,cpuacct) appear twice through symlinks: keep one dir per hierarchy.
        self.hierarchies: dict[str, str] = {}
        for name in controllers:
            path = os.path.join(root, name)
            if os.path.isdir(path):
                self.hierarchies[name] = os.path.realpath(path)

    def _dirs(self, path: str) -> list[str]:
        rel = check_path(path)
        return sorted({os.path.join(h, rel) for h in self.hierarchies.values()})

    def _dir(self, controller: str, path: str) -> str | None:
        hierarchy = self.hierarchies.get(controller)
        return os.path.join(hierarchy, check_path(path)) if hierarchy else None

    def create(self, path: str) -> bool:
        created = False
        for d in self._dirs(path):
            if not os.path.isdir(d):
                os.makedirs(d)
                created = True
        cpuset = self.hierarchies.get("cpuset")
        if cpuset:
            self._fill_cpuset(cpuset, check_path(path))
        return created

    @staticmethod
    def _fill_cpuset(hierarchy: str, rel: str) -> None:
        """A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks: copy them down."""
        current = hierarchy
        for part in rel.split("/"):
            parent, current = current, os.path.join(current, part)
            for name in ("cpuset.cpus", "cpuset.mems"):
                mine = os.path.join(current, name)
                with contextlib.suppress(FileNotFoundError), open(mine) as f:
                    if f.read().strip():
                        continue
                    with open(os.path.join(parent, name)) as p:
                        write(mine, p.read().strip())

    def remove(self, path: str) -> None:
        for d in self._dirs(path):
            _rmtree(d)

    def procs_files(self, path: str) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self._dirs(path)]

    def oom_events_file(self, path: str) -> str:
        d = self._dir("memory", path)
        return os.path.join(d, "memory.oom_control") if d else ""

    def pids(self, path: str) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files(path):
            with contextlib.suppress(FileNotFoundError), open(procs) as f:
                found.update(int(p) for p in f.read().split())
        return sorted(found)

    def set_resources(self, path: str, res: Resources) -> None:
        cpu = self._dir("cpu", path)
        if cpu:
            ctl = CpuController(_Node(os.fsencode(cpu)))
            if res.cpu_shares:
                ctl.shares = res.cpu_shares
            if res.cpu_period:
                ctl.cfs_period_us = res.cpu_period
            if res.cpu_quota:
                ctl.cfs_quota_us = res.cpu_quota
        mem = self._dir("memory", path)
        if mem and res.memory_limit:
            mctl = MemoryController(_Node(os.fsencode(mem)))
            swap_file = os.path.join(mem, "memory.memsw.limit_in_bytes")
            memsw = res.memory_swap_limit or res.memory_limit
            # memsw must never be below the memory limit: order the writes so it never is.
            if os.path.exists(swap_file) and memsw < read_int(swap_file, _UNLIMITED):
                mctl.limit_in_bytes = res.memory_limit
                mctl.memsw_limit_in_bytes = memsw
            else:
                if os.path.exists(swap_file):
                    mctl.memsw_limit_in_bytes = memsw
                mctl.limit_in_bytes = res.memory_limit
        pids = self._dir("pids", path)
        limit = res.unified.get("pids.max") or (str(res.pids_limit) if res.pids_limit else "")
        if pids and limit:
            write(os.path.join(pids, "pids.max"), limit)
        cpuset = self._dir("cpuset", path)
        if cpuset and res.cpuset_cpus:
            write(os.path.join(cpuset, "cpuset.cpus"), res.cpuset_cpus)
        if cpuset and res.cpuset_mems:
            write(os.path.join(cpuset, "cpuset.mems"), res.cpuset_mems)

    def stats(self, path: str) -> CgroupStats:
        acct = self._dir("cpuacct", path)
        usage_ns = int(CpuAcctController(_Node(os.fsencode(acct))).usage or 0) if acct and os.path.isdir(acct) else 0
        mem = self._dir("memory", path)
        memory_stat = read_kv(os.path.join(mem, "memory.stat")) if mem else {}
        usage = read_int(os.path.join(mem, "memory.usage_in_bytes")) if mem else 0
        limit = read_int(os.path.join(mem, "memory.limit_in_bytes")) if mem else 0
        inactive = memory_stat.get("total_inactive_file", 0)
        pids = self._dir("pids", path)
        return CgroupStats(
            cpu_usage_ns=usage_ns,
            memory_usage=usage,
            memory_working_set=max(usage - inactive, 0),
            memory_rss=memory_stat.get("total_rss", 0),
            memory_limit=0 if limit >= _UNLIMITED else limit,
            page_faults=memory_stat.get("total_pgfault", 0),
            major_page_faults=memory_stat.get("total_pgmajfault", 0),
            pids=read_int(os.path.join(pids, "pids.current")) if pids else 0,
            oom_kills=read_kv(self.oom_events_file(path)).get("oom_kill", 0) if mem else 0,
        )


def _rmtree(d: str) -> None:
    """rmdir a cgroup directory bottom-up (cgroupfs refuses rmdir of a dir with children)."""
    if not os.path.isdir(d):
        return
    for entry in os.scandir(d):
        if entry.is_dir(follow_symlinks=False):
            _rmtree(entry.path)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(d)


_: type[CgroupManager] = V1Manager
