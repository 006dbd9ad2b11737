"""Pure parsing and validation of what a plugin receives: the CNI_* environment and the stdin config.

Everything here raises the spec error the runtime should see (4 for the environment, 6 for bytes
that are not JSON, 1 for an unknown version, 7 for a config we cannot serve), before any kernel
object or lock is touched, so bad input leaves nothing behind.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cni.errors import DecodeFailure, IncompatibleVersion, InvalidConfig, InvalidEnvironment
from cni.types import COMMANDS, CONTAINER_COMMANDS, SUPPORTED_VERSIONS, Attachment, PluginRequest

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_BRIDGE = "cni0"
DEFAULT_DATA_DIR = "/var/lib/cni/networks"
# Spec "Parameters": container IDs start alphanumeric, then alphanumerics, `_`, `.`, `-`.
_CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
IFNAMSIZ = 16


@dataclass(frozen=True)
class Route:
    dst: IPNetwork
    gw: IPAddress | None = None

    def to_json(self) -> dict[str, str]:
        out = {"dst": str(self.dst)}
        if self.gw is not None:
            out["gw"] = str(self.gw)
        return out


@dataclass(frozen=True)
class Range:
    """One host-local range: addresses [start, end] of `subnet`, handed out round robin."""

    subnet: IPNetwork
    start: IPAddress
    end: IPAddress
    gateway: IPAddress | None

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address) and (
            ip.version == self.start.version and self.start <= ip <= self.end  # type: ignore[operator]
        )

    @property
    def size(self) -> int:
        return int(self.end) - int(self.start) + 1


@dataclass(frozen=True)
class IpamConfig:
    type: str
    range_sets: tuple[tuple[Range, ...], ...] = ()
    routes: tuple[Route, ...] = ()
    data_dir: str = DEFAULT_DATA_DIR
    dns: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NetConf:
    """The parts of a plugin configuration every plugin of ours reads."""

    name: str
    cni_version: str
    type: str
    raw: Mapping[str, Any]
    prev_result: Mapping[str, Any] | None
    # None when the key is absent: GC then releases nothing rather than everything.
    valid_attachments: tuple[Attachment, ...] | None = None


@dataclass(frozen=True)
class BridgeConfig:
    bridge: str = DEFAULT_BRIDGE
    mtu: int | None = None
    is_gateway: bool = False
    is_default_gateway: bool = False
    force_address: bool = False
    ip_masq: bool = False
    hairpin_mode: bool = False
    promisc_mode: bool = False
    ipam: IpamConfig | None = None
    dns: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Env:
    """The CNI_* environment after validation for the command at hand."""

    command: str
    container_id: str
    netns: str
    ifname: str
    args: Mapping[str, str]
    path: tuple[str, ...]


def parse_env(request: PluginRequest) -> Env:
    """Spec "Parameters": which variables each verb needs and what makes them valid."""
    command = request.command
    if command not in COMMANDS:
        raise InvalidEnvironment("CNI_COMMAND is missing or unknown", repr(command))
    if command in CONTAINER_COMMANDS:
        if not request.container_id:
            raise InvalidEnvironment("CNI_CONTAINERID is required", command)
        if not _CONTAINER_ID.match(request.container_id):
            raise InvalidEnvironment("CNI_CONTAINERID is invalid", repr(request.container_id))
        validate_ifname(request.ifname)
        if command in ("ADD", "CHECK") and not request.netns:
            raise InvalidEnvironment("CNI_NETNS is required", command)
    if command not in ("VERSION",) and not request.path:
        raise InvalidEnvironment("CNI_PATH is required", command)
    return Env(
        command=command,
        container_id=request.container_id,
        netns=request.netns,
        ifname=request.ifname,
        args=parse_cni_args(request.args),
        path=tuple(p for p in request.path.split(":") if p),
    )


def validate_ifname(ifname: str) -> None:
    if not ifname:
        raise InvalidEnvironment("CNI_IFNAME is required")
    if (
        ifname in (".", "..")
        or len(ifname) >= IFNAMSIZ
        or any(c in ifname for c in "/:")
        or any(c.isspace() for c in ifname)
    ):
        raise InvalidEnvironment("CNI_IFNAME is not a valid interface name", repr(ifname))


def parse_cni_args(text: str) -> dict[str, str]:
    """`K=V;K2=V2` (spec "Parameters", CNI_ARGS)."""
    out: dict[str, str] = {}
    for item in filter(None, text.split(";")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidEnvironment("CNI_ARGS must be KEY=VALUE pairs separated by ';'", repr(text))
        out[key] = value
    return out


def decode_json(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError as err:
        raise DecodeFailure("failed to decode network configuration", str(err)) from err
    if not isinstance(obj, dict):
        raise DecodeFailure("network configuration must be a JSON object", type(obj).__name__)
    return obj


def version_of(data: bytes) -> str:
    """Best-effort cniVersion of raw stdin, for the error JSON of requests we failed to parse."""
    try:
        obj = json.loads(data)
    except ValueError:
        return SUPPORTED_VERSIONS[-1]
    version = obj.get("cniVersion") if isinstance(obj, dict) else None
    return version if isinstance(version, str) and version in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[-1]


def parse_netconf(data: bytes) -> NetConf:
    raw = decode_json(data)
    version = raw.get("cniVersion")
    if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
        raise IncompatibleVersion(f"unsupported cniVersion {version!r}", f"supported: {list(SUPPORTED_VERSIONS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _CONTAINER_ID.match(name):
        raise InvalidConfig("network name is missing or invalid", repr(name))
    ptype = raw.get("type")
    if not isinstance(ptype, str) or not ptype:
        raise InvalidConfig("type is required")
    prev = raw.get("prevResult")
    if prev is not None and not isinstance(prev, dict):
        raise InvalidConfig("prevResult must be an object")
    listed = raw.get("cni.dev/valid-attachments")
    if listed is not None and not isinstance(listed, list):
        raise InvalidConfig("cni.dev/valid-attachments must be a list")
    attachments = []
    for item in listed or []:
        if not isinstance(item, dict) or not isinstance(item.get("containerID"), str):
            raise InvalidConfig("cni.dev/valid-attachments entries need containerID and ifname", repr(item))
        attachments.append(Attachment(item["containerID"], str(item.get("ifname", ""))))
    return NetConf(
        name=name,
        cni_version=version,
        type=ptype,
        raw=raw,
        prev_result=prev,
        valid_attachments=tuple(attachments) if listed is not None else None,
    )


def _bool(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise InvalidConfig(f"{key} must be a boolean", repr(value))
    return value


def parse_bridge_config(netconf: NetConf) -> BridgeConfig:
    raw = netconf.raw
    bridge = raw.get("bridge", DEFAULT_BRIDGE)
    if not isinstance(bridge, str) or not bridge or len(bridge) >= IFNAMSIZ or "/" in bridge:
        raise InvalidConfig("bridge must be a valid interface name", repr(bridge))
    mtu = raw.get("mtu")
    if mtu is not None and (not isinstance(mtu, int) or isinstance(mtu, bool) or not 68 <= mtu <= 65535):
        raise InvalidConfig("mtu must be an integer between 68 and 65535", repr(mtu))
    ipam_raw = raw.get("ipam")
    if ipam_raw is not None and not isinstance(ipam_raw, dict):
        raise InvalidConfig("ipam must be an object")
    is_default_gateway = _bool(raw, "isDefaultGateway")
    dns = raw.get("dns") or {}
    if not isinstance(dns, dict):
        raise InvalidConfig("dns must be an object")
    return BridgeConfig(
        bridge=bridge,
        mtu=mtu,
        # isDefaultGateway implies isGateway (the gateway must live somewhere to route through it).
        is_gateway=_bool(raw, "isGateway") or is_default_gateway,
        is_default_gateway=is_default_gateway,
        force_address=_bool(raw, "forceAddress"),
        ip_masq=_bool(raw, "ipMasq"),
        hairpin_mode=_bool(raw, "hairpinMode"),
        promisc_mode=_bool(raw, "promiscMode"),
        ipam=parse_ipam_type(ipam_raw) if ipam_raw else None,
        dns=dns,
    )


def parse_ipam_type(ipam_raw: Mapping[str, Any]) -> IpamConfig:
    """What a main plugin needs of the `ipam` section: which plugin to delegate to, and the routes it
    will hand back (CHECK tells them from routes other plugins of a chain made)."""
    ptype = ipam_raw.get("type")
    if not isinstance(ptype, str) or not ptype or "/" in ptype:
        raise InvalidConfig("ipam.type is required", repr(ptype))
    return IpamConfig(type=ptype, routes=parse_routes(ipam_raw))


def parse_routes(ipam_raw: Mapping[str, Any]) -> tuple[Route, ...]:
    routes = []
    for r in ipam_raw.get("routes") or []:
        if not isinstance(r, dict) or "dst" not in r:
            raise InvalidConfig("every route needs dst", repr(r))
        routes.append(Route(_network(r["dst"], "route dst"), _address(r["gw"], "route gw") if r.get("gw") else None))
    return tuple(routes)


def _network(text: Any, what: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError as err:
        raise InvalidConfig(f"invalid {what}", repr(text)) from err


def _address(text: Any, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(str(text))
    except ValueError as err:
        raise InvalidConfig(f"invalid {what}", repr(text)) from err


def parse_range(raw: Mapping[str, Any]) -> Range:
    """Defaults as host-local documents them: start = network+1, end = last usable, gateway = network+1."""
    if not isinstance(raw, Mapping) or "subnet" not in raw:
        raise InvalidConfig("every range needs a subnet", repr(raw))
    subnet = _network(raw["subnet"], "subnet")
    if subnet.num_addresses < 4 and subnet.version == 4:
        raise InvalidConfig("subnet is too small to allocate from", str(subnet))
    first = subnet.network_address + 1
    last = subnet.broadcast_address - 1 if subnet.version == 4 else subnet.broadcast_address
    start = _address(raw["rangeStart"], "rangeStart") if raw.get("rangeStart") else first
    end = _address(raw["rangeEnd"], "rangeEnd") if raw.get("rangeEnd") else last
    gateway = _address(raw["gateway"], "gateway") if raw.get("gateway") else first
    for what, ip in (("rangeStart", start), ("rangeEnd", end), ("gateway", gateway)):
        if ip not in subnet:
            raise InvalidConfig(f"{what} {ip} is outside subnet {subnet}")
    if start > end:  # type: ignore[operator]
        raise InvalidConfig("rangeStart is after rangeEnd", f"{start} > {end}")
    return Range(subnet=subnet, start=start, end=end, gateway=gateway)


def parse_host_local(netconf: NetConf) -> IpamConfig:
    """host-local `ipam` section: `ranges` (list of range sets) or the older single `subnet` form."""
    ipam = netconf.raw.get("ipam")
    if not isinstance(ipam, dict):
        raise InvalidConfig("ipam section is required")
    ranges_raw = ipam.get("ranges")
    if ranges_raw is None and ipam.get("subnet"):
        ranges_raw = [[{k: ipam[k] for k in ("subnet", "rangeStart", "rangeEnd", "gateway") if k in ipam}]]
    if not isinstance(ranges_raw, list) or not ranges_raw:
        raise InvalidConfig("ipam needs ranges or subnet")
    range_sets: list[tuple[Range, ...]] = []
    for rs in ranges_raw:
        if not isinstance(rs, list) or not rs:
            raise InvalidConfig("each entry of ipam.ranges must be a non-empty list", repr(rs))
        parsed = tuple(parse_range(r) for r in rs)
        if len({r.subnet.version for r in parsed}) != 1:
            raise InvalidConfig("a range set mixes IPv4 and IPv6", repr(rs))
        range_sets.append(parsed)
    routes = parse_routes(ipam)
    data_dir = ipam.get("dataDir") or DEFAULT_DATA_DIR
    if not isinstance(data_dir, str):
        raise InvalidConfig("ipam.dataDir must be a string")
    dns = ipam.get("dns") or {}
    return IpamConfig(
        type=str(ipam.get("type", "")), range_sets=tuple(range_sets), routes=routes, data_dir=data_dir, dns=dns
    )
