"""cgroup access for the runtime: one `CgroupManager` interface, v1 and v2 drivers, one factory."""

from cri.cgroups.factory import detect, new_manager
from cri.cgroups.interfaces import CgroupManager, CgroupStats, Resources
from cri.cgroups.v1 import V1Manager
from cri.cgroups.v2 import V2Manager, shares_to_weight

__all__ = [
    "CgroupManager",
    "CgroupStats",
    "Resources",
    "V1Manager",
    "V2Manager",
    "detect",
    "new_manager",
    "shares_to_weight",
]
