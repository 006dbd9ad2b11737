"""Scratch cgroups for tests: made under each v1 controller (and the unified mount) with a unique
name, emptied and removed afterwards even when the test fails."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "devices", "blkio")


@dataclass
class ScratchCgroup:
    """One relative cgroup path (e.g. `tinykube-test-1a2b`) present in every listed hierarchy."""

    name: str
    dirs: list[str] = field(default_factory=list)


def _hierarchies() -> list[str]:
    found = []
    for ctrl in V1_CONTROLLERS:
        path = os.path.join(CGROUP_ROOT, ctrl)
        if os.path.isdir(path) and not os.path.islink(path):
            found.append(path)
    unified = os.path.join(CGROUP_ROOT, "unified")
    if os.path.isdir(unified):
        found.append(unified)
    if not found and os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        found.append(CGROUP_ROOT)  # a pure v2 host
    return found


def _kill_and_remove(path: str) -> None:
    """Depth-first: kill what runs in each cgroup, then rmdir it."""
    for entry in sorted(os.scandir(path), key=lambda e: e.name) if os.path.isdir(path) else []:
        if entry.is_dir(follow_symlinks=False):
            _kill_and_remove(entry.path)
    for _ in range(50):
        with contextlib.suppress(FileNotFoundError):
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


@contextlib.contextmanager
def scratch_cgroup() -> Iterator[ScratchCgroup]:
    cg = ScratchCgroup(name=f"tinykube-test-{uuid.uuid4().hex[:8]}")
    try:
        for hierarchy in _hierarchies():
            path = os.path.join(hierarchy, cg.name)
            os.mkdir(path)
            cg.dirs.append(path)
        yield cg
    finally:
        for path in cg.dirs:
            _kill_and_remove(path)
