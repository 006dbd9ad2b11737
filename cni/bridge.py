"""`tinykube-bridge`: a Linux bridge, one veth pair per attachment (peer created directly inside the
pod's netns), addresses and routes from the delegated IPAM plugin, optional ipMasq.

Each verb is a short pipeline of named steps. ADD registers an undo callback after every step that
created something; on success `pop_all()` drops them, on failure they run in reverse, so a failed ADD
leaves no interface, address reservation or rule behind. DEL treats whatever is already gone (netns,
link, reservation, rule) as done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import ipaddress
import os
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from cni.config import BridgeConfig, Env, NetConf, parse_bridge_config, parse_env, parse_netconf
from cni.errors import CniError, ContainerUnknown, InvalidConfig, InvalidEnvironment
from cni.interfaces import IPAddress, IPInterface, IPNetwork, Link, Masquerader, Netlink, NetlinkOpener, VethPair
from cni.invoke import Handler, run_plugin
from cni.types import Attachment, PluginRequest, version_key

DEFAULT_ROUTE = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


class CheckFailed(CniError):
    """CHECK found the attachment not as prevResult describes it (plugin-specific code)."""

    default_code = 100


@dataclass(frozen=True)
class Wired:
    """What ADD created on the host: the veth pair (with the MACs we gave it) on this bridge."""

    pair: VethPair
    bridge: Link
    host_mac: str
    pod_mac: str


@dataclass(frozen=True)
class IpamAddress:
    address: IPInterface
    gateway: IPAddress | None


def attachment_tag(network: str, container_id: str, ifname: str) -> str:
    """Stored on the host veth (ifalias) and the ipMasq rule so DEL and GC can find them."""
    return f"tinykube:{network}:{container_id}:{ifname}"


def host_veth_name(network: str, container_id: str, ifname: str) -> str:
    """Deterministic, so DEL/GC find the host end even when the pod's netns is already gone."""
    digest = hashlib.sha256(attachment_tag(network, container_id, ifname).encode()).hexdigest()
    return "veth" + digest[:8]


def random_mac() -> str:
    """A random locally administered unicast MAC (set by us so results need no lookup afterwards)."""
    octets = [random.getrandbits(8) for _ in range(6)]
    octets[0] = (octets[0] & 0xFE) | 0x02
    return ":".join(f"{o:02x}" for o in octets)


def parse_tag(alias: str, network: str) -> Attachment | None:
    prefix = f"tinykube:{network}:"
    if not alias.startswith(prefix):
        return None
    cid, _, ifname = alias[len(prefix) :].partition(":")
    return Attachment(cid, ifname)


def ipam_addresses(result: Mapping[str, Any]) -> list[IpamAddress]:
    out = []
    for entry in result.get("ips") or []:
        try:
            address = ipaddress.ip_interface(str(entry["address"]))
            gw = ipaddress.ip_address(str(entry["gateway"])) if entry.get("gateway") else None
        except (KeyError, ValueError, TypeError) as err:
            raise InvalidConfig("IPAM returned an invalid address", repr(entry)) from err
        out.append(IpamAddress(address, gw))
    return out


def build_result(
    netconf: NetConf,
    conf: BridgeConfig,
    *,
    netns: str,
    bridge: Link,
    host: Link,
    container: Link,
    ipam: Mapping[str, Any],
    default_routes: Sequence[Mapping[str, str]],
) -> dict[str, Any]:
    """Spec "Success" result: prevResult (when chained) extended with our three interfaces."""
    prev = netconf.prev_result or {}
    interfaces = list(prev.get("interfaces") or [])
    base = len(interfaces)
    interfaces += [
        {"name": bridge.name, "mac": bridge.mac},
        {"name": host.name, "mac": host.mac},
        {"name": container.name, "mac": container.mac, "sandbox": netns},
    ]
    ips = list(prev.get("ips") or [])
    for entry in ipam.get("ips") or []:
        ip = {k: v for k, v in entry.items() if k != "interface"}
        ip["interface"] = base + 2
        if version_key(netconf.cni_version) < (1, 0, 0):
            ip.setdefault("version", "6" if ":" in str(entry.get("address", "")) else "4")
        ips.append(ip)
    routes = list(prev.get("routes") or []) + list(ipam.get("routes") or []) + list(default_routes)
    dns = dict(prev.get("dns") or {})
    dns.update(ipam.get("dns") or {})
    dns.update(conf.dns)
    result: dict[str, Any] = {"cniVersion": netconf.cni_version, "interfaces": interfaces, "ips": ips}
    if routes:
        result["routes"] = routes
    result["dns"] = dns
    return result


def _routes_we_made(
    prev: Mapping[str, Any], ours: Sequence[IPInterface], conf: BridgeConfig
) -> list[tuple[IPNetwork, IPAddress | None]]:
    """Routes of prevResult this plugin installed (spec CHECK: other plugins of the chain may have
    added or changed theirs): those via a gateway on our subnets, the IPAM-configured ones, and the
    default route of isDefaultGateway."""
    configured = {r.dst for r in conf.ipam.routes} if conf.ipam else set()
    subnets = [a.network for a in ours]
    out: list[tuple[IPNetwork, IPAddress | None]] = []
    for r in prev.get("routes") or []:
        try:
            dst = ipaddress.ip_network(str(r.get("dst")), strict=False)
            gw = ipaddress.ip_address(str(r["gw"])) if r.get("gw") else None
        except ValueError:
            continue
        via_us = gw is not None and any(gw in n for n in subnets)
        if via_us or dst in configured or (conf.is_default_gateway and dst.prefixlen == 0):
            out.append((dst, gw))
    return out


@contextlib.contextmanager
def open_netns(path: str) -> Iterator[int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise ContainerUnknown("network namespace does not exist", f"{path}: {err.strerror}") from err
    try:
        yield fd
    finally:
        os.close(fd)


class BridgePlugin:
    """Holds the implementations it needs (picked in `cni.registry`), one instance per process.

    A long-lived instance (agent, in-process runtime) remembers the bridges it has ensured, so an
    ADD costs one RTM_NEWLINK plus the pod-side address and routes. With a `reaper` executor, DEL
    leaves the veth deletion (~18 ms of kernel RCU waiting) to a background thread: the address is
    released at once, and an ADD of the same attachment waits for the pending deletion first.
    """

    def __init__(
        self,
        netlink: NetlinkOpener,
        masq: Masquerader,
        ipam_handlers: Mapping[str, Handler],
        *,
        reaper: Executor | None = None,
    ) -> None:
        self._netlink = netlink
        self._masq = masq
        self._ipam_handlers = ipam_handlers
        self._reaper = reaper
        self._lock = threading.Lock()
        self._bridges: dict[str, Link] = {}  # guarded by _lock: bridges ensured by this process
        self._gateways: set[tuple[str, IPInterface]] = set()  # guarded by _lock
        self._pending: dict[str, Future[None]] = {}  # guarded by _lock: veth deletions in flight

    def close(self) -> None:
        """Finish pending deletions and drop the calling thread's cached netlink handle."""
        if self._reaper is not None:
            self._reaper.shutdown(wait=True)
        self._netlink.close_shared()

    def handle(self, request: PluginRequest) -> dict[str, Any] | None:
        env = parse_env(request)
        netconf = parse_netconf(request.stdin)
        conf = parse_bridge_config(netconf)
        if conf.ipam is None and env.command in ("ADD", "CHECK"):
            raise InvalidConfig("ipam section is required")
        if env.command == "ADD":
            return self.cmd_add(env, netconf, conf, request)
        if env.command == "DEL":
            self.cmd_del(env, netconf, conf, request)
        elif env.command == "CHECK":
            self.cmd_check(env, netconf, conf, request)
        elif env.command in ("STATUS", "GC"):
            self._delegate(conf, request)
            if env.command == "GC":
                self.cmd_gc(netconf)
        return None

    # --- helpers ---------------------------------------------------------------------------------

    def _delegate(
        self, conf: BridgeConfig, request: PluginRequest, command: str | None = None
    ) -> dict[str, Any] | None:
        """Spec "Delegated plugins": same environment and config, CNI_COMMAND possibly changed."""
        if conf.ipam is None:
            return None
        if command is not None:
            request = dataclasses.replace(request, command=command)
        bin_dirs = [p for p in request.path.split(":") if p]
        return run_plugin(conf.ipam.type, request, bin_dirs, handlers=self._ipam_handlers)

    def _bridge(self, host: Netlink, conf: BridgeConfig, gateways: Sequence[IPInterface]) -> Link:
        """The bridge with its gateway addresses, created if missing; cached once ensured."""
        with self._lock:
            cached = self._bridges.get(conf.bridge)
            if cached is not None and all((conf.bridge, g) in self._gateways for g in gateways):
                return cached
        # A fixed MAC: otherwise the bridge takes the lowest MAC of its ports, changing as pods come and go.
        host.add_bridge(conf.bridge, mtu=conf.mtu, mac=random_mac())
        bridge = host.link(conf.bridge)
        if bridge is None:
            raise CniError("bridge vanished right after creation", conf.bridge)
        if bridge.kind != "bridge":
            raise InvalidConfig(f"{conf.bridge} exists and is not a bridge", f"kind={bridge.kind!r}")
        host.set_link(
            bridge.index,
            up=True,
            mtu=conf.mtu if conf.mtu and conf.mtu != bridge.mtu else None,
            promisc=True if conf.promisc_mode and not bridge.promisc else None,
        )
        for gateway in gateways:
            host.add_address(bridge.index, gateway)
        with self._lock:
            self._bridges[conf.bridge] = bridge
            self._gateways.update((conf.bridge, g) for g in gateways)
        return bridge

    def _forget_bridge(self, name: str) -> None:
        with self._lock:
            self._bridges.pop(name, None)
            self._gateways = {g for g in self._gateways if g[0] != name}

    def _wait_pending(self, tag: str) -> None:
        with self._lock:
            pending = self._pending.get(tag)
        if pending is not None:
            with contextlib.suppress(Exception):
                pending.result(timeout=30)

    def _create_veth(
        self,
        host: Netlink,
        pod: Netlink,
        *,
        nsfd: int,
        env: Env,
        conf: BridgeConfig,
        veth: str,
        gateways: Sequence[IPInterface],
    ) -> Wired:
        """The veth pair, peer born in the pod netns and host end enslaved, in one request; handles a
        stale host end of a crashed ADD and a bridge deleted behind our back (one retry each)."""
        host_mac, pod_mac = random_mac(), random_mac()
        bridge = self._bridge(host, conf, gateways)
        for attempt in range(3):
            try:
                pair = host.add_veth(
                    veth,
                    peer=env.ifname,
                    peer_netns_fd=nsfd,
                    mtu=conf.mtu,
                    master=bridge.index,
                    mac=host_mac,
                    peer_mac=pod_mac,
                )
                return Wired(pair, bridge, host_mac, pod_mac)
            except FileExistsError:
                if pod.link(env.ifname) is not None:
                    raise InvalidEnvironment(
                        f"interface {env.ifname} already exists in the container", env.netns
                    ) from None
                host.delete_link_named(veth)  # left by an ADD that crashed before its rollback ran
            except OSError as err:
                if err.errno not in (errno.EINVAL, errno.ENODEV) or attempt:
                    raise CniError("failed to create the veth pair", str(err)) from err
                self._forget_bridge(conf.bridge)
                bridge = self._bridge(host, conf, gateways)
        raise CniError("failed to create the veth pair", veth)

    # --- verbs -----------------------------------------------------------------------------------

    def cmd_add(self, env: Env, netconf: NetConf, conf: BridgeConfig, request: PluginRequest) -> dict[str, Any]:
        tag = attachment_tag(netconf.name, env.container_id, env.ifname)
        veth = host_veth_name(netconf.name, env.container_id, env.ifname)
        with contextlib.ExitStack() as handles, contextlib.ExitStack() as undo:
            nsfd = handles.enter_context(open_netns(env.netns))
            ipam = self._delegate(conf, request) or {}
            undo.callback(self._delegate, conf, request, "DEL")
            addresses = ipam_addresses(ipam)
            if not addresses:
                raise InvalidConfig("IPAM returned no addresses", conf.ipam.type if conf.ipam else "")
            gateways = [
                ipaddress.ip_interface(f"{a.gateway}/{a.address.network.prefixlen}")
                for a in addresses
                if conf.is_gateway and a.gateway is not None
            ]

            self._wait_pending(tag)
            host = self._netlink.shared_host()
            pod = self._netlink.netns(nsfd)
            handles.callback(pod.close)
            wired = self._create_veth(host, pod, nsfd=nsfd, env=env, conf=conf, veth=veth, gateways=gateways)
            pair = wired.pair
            undo.callback(host.delete_link, pair.host_index)
            host.set_link(pair.host_index, up=True, alias=tag)
            if conf.hairpin_mode:
                host.set_link(pair.host_index, hairpin=True)

            for a in addresses:
                pod.add_address(pair.peer_index, a.address)
            pod.set_link(pair.peer_index, up=True)
            default_routes = self._configure_routes(pod, pair.peer_index, conf, ipam, addresses)

            if conf.ip_masq:
                self._masq.add(netconf.name, tag, [a.address for a in addresses])
                undo.callback(self._masq.remove, netconf.name, tag, [a.address for a in addresses])

            mtu = conf.mtu or 0
            result = build_result(
                netconf,
                conf,
                netns=env.netns,
                bridge=wired.bridge,
                host=Link(index=pair.host_index, name=veth, kind="veth", mac=wired.host_mac, mtu=mtu),
                container=Link(index=pair.peer_index, name=env.ifname, kind="veth", mac=wired.pod_mac, mtu=mtu),
                ipam=ipam,
                default_routes=default_routes,
            )
            undo.pop_all()
            return result

    @staticmethod
    def _configure_routes(
        pod: Netlink, index: int, conf: BridgeConfig, ipam: Mapping[str, Any], addresses: Sequence[IpamAddress]
    ) -> list[dict[str, str]]:
        """IPAM routes (gw defaults to the range gateway), then the default route for isDefaultGateway."""
        gateways = {a.address.version: a.gateway for a in addresses if a.gateway is not None}
        has_default: set[int] = set()
        for r in ipam.get("routes") or []:
            try:
                dst = ipaddress.ip_network(str(r["dst"]), strict=False)
                gw = ipaddress.ip_address(str(r["gw"])) if r.get("gw") else gateways.get(dst.version)
            except (KeyError, ValueError) as err:
                raise InvalidConfig("IPAM returned an invalid route", repr(r)) from err
            pod.add_route(dst, gw, index)
            if dst.prefixlen == 0:
                has_default.add(dst.version)
        added: list[dict[str, str]] = []
        if conf.is_default_gateway:
            for version, gw in gateways.items():
                if version not in has_default and gw is not None:
                    pod.add_route(DEFAULT_ROUTE[version], gw, index)
                    added.append({"dst": str(DEFAULT_ROUTE[version]), "gw": str(gw)})
        return added

    def cmd_del(self, env: Env, netconf: NetConf, conf: BridgeConfig, request: PluginRequest) -> None:
        tag = attachment_tag(netconf.name, env.container_id, env.ifname)
        if conf.ip_masq:
            prev = ipam_addresses(netconf.prev_result) if netconf.prev_result else None
            self._masq.remove(netconf.name, tag, [a.address for a in prev] if prev else None)
        self._delegate(conf, request)
        veth = host_veth_name(netconf.name, env.container_id, env.ifname)
        if self._reaper is None or not self._free_ifname(veth, env):
            self._remove_links(veth, env)
            return
        future = self._reaper.submit(self._remove_links, veth, None)
        with self._lock:
            self._pending[tag] = future
        future.add_done_callback(lambda done: self._drop_pending(tag, done))

    def _free_ifname(self, veth: str, env: Env) -> bool:
        """Before deleting in the background: take the pod end down and rename it out of the way, so
        the interface name is free the moment DEL returns (another plugin may ADD it right away).
        False when there is nothing of ours to delete in the background."""
        host = self._netlink.shared_host()
        if host.link(veth) is None:
            return False
        if env.netns:
            with contextlib.suppress(ContainerUnknown), open_netns(env.netns) as nsfd:
                pod = self._netlink.netns(nsfd)
                try:
                    link = pod.link(env.ifname)
                    if link is not None and link.kind == "veth":
                        pod.set_link(link.index, up=False, name=f"tkdel{link.index}")
                finally:
                    pod.close()
        return True

    def _drop_pending(self, tag: str, done: Future[None]) -> None:
        with self._lock:
            if self._pending.get(tag) is done:
                del self._pending[tag]

    def _remove_links(self, veth: str, env: Env | None) -> None:
        """Delete the pair (removing the host end takes the pod end with it). Without a host end,
        look in the pod netns, if given and still there, for an interface we would have made."""
        host = self._netlink.host()
        try:
            if host.link(veth) is not None:
                host.delete_link_named(veth)
                return
        finally:
            host.close()
        if env is None or not env.netns:
            return
        with contextlib.suppress(ContainerUnknown), open_netns(env.netns) as nsfd:
            pod = self._netlink.netns(nsfd)
            try:
                link = pod.link(env.ifname)
                if link is not None and link.kind == "veth":
                    pod.delete_link(link.index)
            finally:
                pod.close()

    def cmd_check(self, env: Env, netconf: NetConf, conf: BridgeConfig, request: PluginRequest) -> None:
        prev = netconf.prev_result
        if prev is None:
            raise InvalidConfig("CHECK needs prevResult")
        self._delegate(conf, request)
        interfaces = prev.get("interfaces") or []
        index = next(
            (i for i, itf in enumerate(interfaces) if itf.get("name") == env.ifname and itf.get("sandbox")), None
        )
        if index is None:
            raise CheckFailed(f"prevResult lists no sandbox interface {env.ifname}")
        expected_mac = str(interfaces[index].get("mac") or "").lower()
        with open_netns(env.netns) as nsfd:
            pod = self._netlink.netns(nsfd)
            try:
                link = pod.link(env.ifname)
                if link is None:
                    raise CheckFailed(f"interface {env.ifname} is missing in the container", env.netns)
                if link.kind != "veth":
                    raise CheckFailed(f"interface {env.ifname} is a {link.kind or 'device'}, not a veth")
                if expected_mac and link.mac.lower() != expected_mac:
                    raise CheckFailed(f"interface {env.ifname} has MAC {link.mac}, expected {expected_mac}")
                present = set(pod.addresses(link.index))
                ours = [
                    ipaddress.ip_interface(str(entry.get("address")))
                    for entry in prev.get("ips") or []
                    if entry.get("interface") in (None, index)
                ]
                for want in ours:
                    if want not in present:
                        raise CheckFailed(f"address {want} is missing on {env.ifname}")
                routes = pod.routes()
                for dst, gw in _routes_we_made(prev, ours, conf):
                    if not any(e.dst == dst and (gw is None or e.gw == gw) for e in routes):
                        raise CheckFailed(f"route to {dst}{f' via {gw}' if gw else ''} is missing in the container")
            finally:
                pod.close()
        host = self._netlink.shared_host()
        try:
            veth = host.link(host_veth_name(netconf.name, env.container_id, env.ifname))
            bridge = host.link(conf.bridge)
            if veth is None:
                raise CheckFailed("host end of the veth pair is missing")
            if bridge is None or veth.master != bridge.index:
                raise CheckFailed(f"host veth {veth.name} is not attached to bridge {conf.bridge}")
        finally:
            host.close()
        if conf.ip_masq:
            tag = attachment_tag(netconf.name, env.container_id, env.ifname)
            self._masq.check(netconf.name, tag, [a.address for a in ipam_addresses(prev)])

    def cmd_gc(self, netconf: NetConf) -> None:
        """Spec 1.1 GC: host veths and ipMasq rules of attachments not listed as valid."""
        if netconf.valid_attachments is None:
            return
        valid = set(netconf.valid_attachments)
        host = self._netlink.shared_host()
        try:
            for link in host.links():
                owner = parse_tag(link.alias, netconf.name)
                if owner is not None and owner not in valid:
                    host.delete_link(link.index)
        finally:
            host.close()
        keep = {attachment_tag(netconf.name, a.container_id, a.ifname) for a in valid}
        self._masq.gc(netconf.name, keep)
