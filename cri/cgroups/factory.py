"""Pick the cgroup driver in one place, from an explicit table (like runc's manager/new.go)."""

from __future__ import annotations

import os
from collections.abc import Callable

from cri.cgroups.interfaces import CgroupManager
from cri.cgroups.v1 import V1Manager
from cri.cgroups.v2 import V2Manager

DRIVERS: dict[str, Callable[[str], CgroupManager]] = {"v1": V1Manager, "v2": V2Manager}


def detect(root: str = "/sys/fs/cgroup") -> str:
    """`v2` on a unified host (cgroup.controllers at the root), else `v1` (legacy or hybrid)."""
    return "v2" if os.path.exists(os.path.join(root, "cgroup.controllers")) else "v1"


def new_manager(driver: str = "auto", root: str = "/sys/fs/cgroup") -> CgroupManager:
    name = detect(root) if driver == "auto" else driver
    try:
        return DRIVERS[name](root)
    except KeyError:
        raise ValueError(f"unknown cgroup driver {driver!r}; choose from auto, {', '.join(DRIVERS)}") from None
