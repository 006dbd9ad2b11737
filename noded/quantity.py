"""Kubernetes resource quantities (`100m`, `64Mi`, `1.5`, `2e3`) as exact Decimals, and the CRI cgroup
values a container's requests/limits become (the kubelet's conversions: shares = millicores·1024/1000,
at least 2; quota = millicores·period/1000 with a 100 ms period, at least 1 ms)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from noded.errors import PodSpecError
from noded.types import LinuxResources

_SUFFIXES: dict[str, Decimal] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}

CPU_PERIOD_US = 100_000
MIN_SHARES = 2
MIN_QUOTA_US = 1_000


def parse_quantity(value: Any) -> Decimal:
    """`"250m"` → 0.25, `"1Gi"` → 1073741824; numbers pass through."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = str(value).strip()
    try:
        return Decimal(text)  # plain and exponent forms: "1.5", "2e3"
    except InvalidOperation:
        pass
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            try:
                return Decimal(text[: -len(suffix)]) * _SUFFIXES[suffix]
            except InvalidOperation:
                break
    raise PodSpecError("InvalidQuantity", f"cannot parse quantity {value!r}")


def millicores(value: Any) -> int:
    return int((parse_quantity(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


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
