"""The CRI cgroup values a container's requests/limits become (the kubelet's conversions: shares =
millicores·1024/1000, at least 2; quota = millicores·period/1000 with a 100 ms period, at least 1 ms)
and the pod's QoS class. Quantities are parsed by the one shared parser in controlplane.validation."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from controlplane.validation.quantity import QuantityError
from controlplane.validation.quantity import parse_quantity as parse_api_quantity
from noded.errors import PodSpecError
from noded.types import LinuxResources

CPU_PERIOD_US = 100_000
MIN_SHARES = 2
MIN_QUOTA_US = 1_000


def parse_quantity(value: Any) -> Fraction:
    """`"250m"` → 1/4, `"1Gi"` → 1073741824; a bad quantity is a pod spec error, shown on the pod."""
    try:
        return parse_api_quantity(value)
    except (QuantityError, TypeError) as err:
        raise PodSpecError("InvalidQuantity", f"cannot parse quantity {value!r}") from err


def millicores(value: Any) -> int:
    return math.ceil(parse_quantity(value) * 1000)


def linux_resources(resources: dict[str, Any] | None) -> LinuxResources:
    """A container's `resources` → CRI LinuxContainerResources (a request defaults to the limit)."""
    resources = resources or {}
    limits = resources.get("limits") or {}
    requests = {**limits, **(resources.get("requests") or {})}
    shares = quota = period = memory = 0
    if "cpu" in requests:
        shares = max(MIN_SHARES, millicores(requests["cpu"]) * 1024 // 1000)
    if "cpu" in limits:
        period = CPU_PERIOD_US
        quota = max(MIN_QUOTA_US, millicores(limits["cpu"]) * CPU_PERIOD_US // 1000)
    if "memory" in limits:
        memory = int(parse_quantity(limits["memory"]))
    return LinuxResources(cpu_period=period, cpu_quota=quota, cpu_shares=shares, memory_limit_in_bytes=memory)


def qos_class(containers: list[dict[str, Any]]) -> str:
    """Guaranteed when every container limits cpu and memory with requests equal to limits,
    BestEffort when none asks for anything, Burstable otherwise."""
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        limits = res.get("limits") or {}
        requests = {**limits, **(res.get("requests") or {})}
        if limits or requests:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or parse_quantity(requests[name]) != parse_quantity(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
