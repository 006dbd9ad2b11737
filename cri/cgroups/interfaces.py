"""The one cgroup interface the runtime uses; v1 and v2 drivers implement it (`factory.new_manager`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Resources:
    """CRI `LinuxContainerResources` in our units; 0 or "" means "not set" (leave the kernel default).

    `memory_swap_limit` is memory+swap like cgroup v1's memsw; `pids_limit` has no CRI field and comes
    from `unified["pids.max"]` or the daemon's default.
    """

    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    memory_limit: int = 0
    memory_swap_limit: int = 0
    pids_limit: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    unified: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CgroupStats:
    cpu_usage_ns: int = 0
    memory_usage: int = 0
    memory_working_set: int = 0
    memory_rss: int = 0
    memory_limit: int = 0
    page_faults: int = 0
    major_page_faults: int = 0
    pids: int = 0
    oom_kills: int = 0


class CgroupManager(Protocol):
    """Paths are relative to the cgroup root(s), e.g. `kubepods/pod1/<container-id>`."""

    version: int

    def create(self, path: str) -> bool:
        """Make the cgroup (and missing ancestors) in every hierarchy; True if it did not exist."""
        ...

    def remove(self, path: str) -> None:
        """rmdir it (children first) everywhere; a missing cgroup is fine, a busy one raises OSError."""
        ...

    def procs_files(self, path: str) -> list[str]:
        """The `cgroup.procs` files a process writes its pid into to join the cgroup."""
        ...

    def oom_events_file(self, path: str) -> str:
        """A `key value` file with an `oom_kill` counter for this cgroup."""
        ...

    def pids(self, path: str) -> list[int]: ...

    def set_resources(self, path: str, res: Resources) -> None: ...

    def stats(self, path: str) -> CgroupStats: ...


def read_kv(path: str) -> dict[str, int]:
    """A `key value` per line cgroup file (memory.stat, memory.events, cpu.stat) as a dict."""
    out: dict[str, int] = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                    out[parts[0]] = int(parts[1])
    except FileNotFoundError:
        pass
    return out


def read_int(path: str, default: int = 0) -> int:
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return default
    return default if text in ("", "max") else int(text.split()[0])


def write(path: str, value: str | int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def check_path(path: str) -> str:
    """A normalized relative cgroup path; refuses `..` and empty components (no escaping the root)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"bad cgroup path {path!r}")
    return "/".join(parts)
