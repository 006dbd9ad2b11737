"""Capability sets for containers: names → numbers, the default set, add/drop and privileged (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from cri.errors import InvalidArgument

CAPABILITIES = {
    name: num
    for num, name in enumerate(
        (
            "CHOWN",
            "DAC_OVERRIDE",
            "DAC_READ_SEARCH",
            "FOWNER",
            "FSETID",
            "KILL",
            "SETGID",
            "SETUID",
            "SETPCAP",
            "LINUX_IMMUTABLE",
            "NET_BIND_SERVICE",
            "NET_BROADCAST",
            "NET_ADMIN",
            "NET_RAW",
            "IPC_LOCK",
            "IPC_OWNER",
            "SYS_MODULE",
            "SYS_RAWIO",
            "SYS_CHROOT",
            "SYS_PTRACE",
            "SYS_PACCT",
            "SYS_ADMIN",
            "SYS_BOOT",
            "SYS_NICE",
            "SYS_RESOURCE",
            "SYS_TIME",
            "SYS_TTY_CONFIG",
            "MKNOD",
            "LEASE",
            "AUDIT_WRITE",
            "AUDIT_CONTROL",
            "SETFCAP",
            "MAC_OVERRIDE",
            "MAC_ADMIN",
            "SYSLOG",
            "WAKE_ALARM",
            "BLOCK_SUSPEND",
            "AUDIT_READ",
            "PERFMON",
            "BPF",
            "CHECKPOINT_RESTORE",
        )
    )
}

# The set containerd and CRI-O give a container that asks for nothing (OCI runtime defaults).
DEFAULT_CAPABILITIES = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    }
)


def parse_name(name: str) -> str:
    """`net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all name the same capability."""
    upper = name.strip().upper()
    bare = upper.removeprefix("CAP_")
    if bare == "ALL":
        return bare
    if bare not in CAPABILITIES:
        raise InvalidArgument(f"unknown capability {name!r}")
    return bare


def effective_set(*, privileged: bool, add: Iterable[str] = (), drop: Iterable[str] = ()) -> frozenset[str]:
    """The container's capability names: privileged gets all; otherwise default + add − drop, where
    `ALL` in drop empties the base and `ALL` in add fills it (add wins over drop, as in containerd)."""
    if privileged:
        return frozenset(CAPABILITIES)
    adds = {parse_name(n) for n in add}
    drops = {parse_name(n) for n in drop}
    caps = set(DEFAULT_CAPABILITIES)
    if "ALL" in drops:
        caps.clear()
    caps -= drops
    if "ALL" in adds:
        caps |= set(CAPABILITIES)
    caps |= adds - {"ALL"}
    return frozenset(caps)


def to_mask(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITIES[name]
    return mask
