"""cgroup v2 driver: one unified tree; controllers enabled top-down through `cgroup.subtree_control`."""

from __future__ import annotations

import contextlib
import os

from cri.cgroups.interfaces import CgroupManager, CgroupStats, Resources, check_path, read_int, read_kv, write
from cri.cgroups.v1 import _rmtree

WANTED = ("cpuset", "cpu", "io", "memory", "pids")
DEFAULT_PERIOD = 100_000


def shares_to_weight(shares: int) -> int:
    """v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000], the mapping runc and the kubelet use."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


class V2Manager:
    version = 2

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root

    def _dir(self, path: str) -> str:
        return os.path.join(self.root, check_path(path))

    def create(self, path: str) -> bool:
        rel = check_path(path)
        current = self.root
        created = False
        for part in rel.split("/"):
            self._enable_controllers(current)
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                os.mkdir(current)
                created = True
        return created

    @staticmethod
    def _enable_controllers(directory: str) -> None:
        """Delegate the controllers we set to children (a parent must enable them for its kids)."""
        try:
            with open(os.path.join(directory, "cgroup.controllers")) as f:
                available = set(f.read().split())
            with open(os.path.join(directory, "cgroup.subtree_control")) as f:
                enabled = set(f.read().split())
        except FileNotFoundError:
            return
        missing = [c for c in WANTED if c in available and c not in enabled]
        if missing:
            write(os.path.join(directory, "cgroup.subtree_control"), " ".join(f"+{c}" for c in missing))

    def remove(self, path: str) -> None:
        _rmtree(self._dir(path))

    def procs_files(self, path: str) -> list[str]:
        return [os.path.join(self._dir(path), "cgroup.procs")]

    def oom_events_file(self, path: str) -> str:
        return os.path.join(self._dir(path), "memory.events")

    def pids(self, path: str) -> list[int]:
        with contextlib.suppress(FileNotFoundError), open(self.procs_files(path)[0]) as f:
            return sorted(int(p) for p in f.read().split())
        return []

    def set_resources(self, path: str, res: Resources) -> None:
        d = self._dir(path)
        if res.cpu_shares:
            write(os.path.join(d, "cpu.weight"), shares_to_weight(res.cpu_shares))
        if res.cpu_quota or res.cpu_period:
            quota = str(res.cpu_quota) if res.cpu_quota > 0 else "max"
            write(os.path.join(d, "cpu.max"), f"{quota} {res.cpu_period or DEFAULT_PERIOD}")
        if res.memory_limit:
            write(os.path.join(d, "memory.max"), res.memory_limit)
            # v2 limits swap alone; the CRI value is memory+swap (v1 memsw semantics).
            swap = max(res.memory_swap_limit - res.memory_limit, 0) if res.memory_swap_limit else 0
            if os.path.exists(os.path.join(d, "memory.swap.max")):
                write(os.path.join(d, "memory.swap.max"), swap)
        if res.pids_limit:
            write(os.path.join(d, "pids.max"), res.pids_limit)
        if res.cpuset_cpus:
            write(os.path.join(d, "cpuset.cpus"), res.cpuset_cpus)
        if res.cpuset_mems:
            write(os.path.join(d, "cpuset.mems"), res.cpuset_mems)
        for key, value in sorted(res.unified.items()):
            if "/" in key or key.startswith("."):
                raise ValueError(f"bad unified cgroup key {key!r}")
            write(os.path.join(d, key), value)

    def stats(self, path: str) -> CgroupStats:
        d = self._dir(path)
        cpu = read_kv(os.path.join(d, "cpu.stat"))
        mem = read_kv(os.path.join(d, "memory.stat"))
        usage = read_int(os.path.join(d, "memory.current"))
        return CgroupStats(
            cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            memory_usage=usage,
            memory_working_set=max(usage - mem.get("inactive_file", 0), 0),
            memory_rss=mem.get("anon", 0),
            memory_limit=read_int(os.path.join(d, "memory.max")),
            page_faults=mem.get("pgfault", 0),
            major_page_faults=mem.get("pgmajfault", 0),
            pids=read_int(os.path.join(d, "pids.current")),
            oom_kills=read_kv(self.oom_events_file(path)).get("oom_kill", 0),
        )


_: type[CgroupManager] = V2Manager
