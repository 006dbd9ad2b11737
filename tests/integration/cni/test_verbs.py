"""ADD / DEL / CHECK / STATUS / GC / VERSION against the real kernel, in every execution mode."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from cni import invoke
from cni.errors import CniError, ContainerUnknown, PluginNotAvailable
from cni.types import Attachment
from tests.integration.cni.conftest import Node, make_node
from tests.support.namespaces import NetNS


def cid() -> str:
    return uuid.uuid4().hex


def test_add_wires_pod_to_bridge_and_del_removes_everything(node: Node, netns_factory: Callable[[str], NetNS]) -> None:
    pod = netns_factory("pod")
    c = cid()
    result = node.add(pod, c)

    names = [i["name"] for i in result["interfaces"]]
    assert names[0] == "cni0"
    assert names[2] == "eth0"
    assert names[1].startswith("veth")
    assert result["interfaces"][2]["sandbox"] == pod.path
    assert result["ips"] == [{"address": "10.99.0.2/24", "gateway": "10.99.0.1", "interface": 2}]
    assert {"dst": "0.0.0.0/0", "gw": "10.99.0.1"} in result["routes"]
    assert "10.99.0.2/24" in pod.run(["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
    assert "default via 10.99.0.1 dev eth0" in pod.run(["ip", "route"]).stdout
    assert "10.99.0.1/24" in node.host.run(["ip", "-o", "addr", "show", "dev", "cni0"]).stdout
    host_veth = node.host.run(["ip", "-d", "link", "show", names[1]]).stdout
    assert "master cni0" in host_veth
    assert node.reservations() == ["10.99.0.2"]
    # The pod reaches its gateway on the bridge: the wiring carries packets, not just config.
    assert pod.run(["busybox", "ping", "-c1", "-W2", "10.99.0.1"], check=False).returncode == 0

    node.delete(pod, c)
    assert pod.run(["ip", "link", "show", "eth0"], check=False).returncode != 0
    assert node.reservations() == []
    node.wait_links_gone(names[1])


def test_del_is_idempotent_and_works_after_netns_is_gone(node: Node, netns_factory: Callable[[str], NetNS]) -> None:
    pod = netns_factory("pod")
    c = cid()
    veth = node.add(pod, c)["interfaces"][1]["name"]
    node.delete(pod, c)
    node.delete(pod, c)  # second DEL: nothing left, still success
    other = netns_factory("pod")
    c2 = cid()
    node.add(other, c2)
    subprocess.run(["ip", "netns", "delete", other.name], check=True)  # the pod's netns is gone
    invoke.delete(node.conf, c2, other.path, "eth0", node.bin_dirs, handlers=node.handlers)
    invoke.delete(node.conf, c2, "", "eth0", node.bin_dirs, handlers=node.handlers)
    assert node.reservations() == []
    node.wait_links_gone(veth)


def test_check_passes_then_detects_missing_veth_wrong_address_and_missing_route(
    agent_node: Node, netns_factory: Callable[[str], NetNS]
) -> None:
    node = agent_node
    pods = [netns_factory("pod") for _ in range(3)]
    ids = [cid() for _ in pods]
    for pod, c in zip(pods, ids, strict=True):
        node.add(pod, c)
        node.check(pod, c)

    pods[0].run(["ip", "link", "del", "eth0"])
    with pytest.raises(CniError, match="missing in the container"):
        node.check(pods[0], ids[0])

    pods[1].run(["ip", "addr", "flush", "dev", "eth0"])
    pods[1].run(["ip", "addr", "add", "10.99.0.200/24", "dev", "eth0"])
    with pytest.raises(CniError, match=r"address 10\.99\.0\.\d+/24 is missing"):
        node.check(pods[1], ids[1])

    pods[2].run(["ip", "route", "del", "default"])
    with pytest.raises(CniError, match=r"route to 0\.0\.0\.0/0 via 10\.99\.0\.1 is missing"):
        node.check(pods[2], ids[2])


def test_status_succeeds_and_reports_50_when_the_range_is_exhausted(
    tmp_path: Path, netns_factory: Callable[[str], NetNS]
) -> None:
    # /30 with the gateway taken leaves exactly one address for pods.
    with make_node(tmp_path, netns_factory("host"), "agent", subnet="10.98.0.0/30") as node:
        invoke.status(node.conf, node.bin_dirs)
        pod = netns_factory("pod")
        node.add(pod, cid())
        with pytest.raises(PluginNotAvailable) as err:
            invoke.status(node.conf, node.bin_dirs)
        assert err.value.code == 50


def test_gc_releases_everything_not_in_valid_attachments(tmp_path: Path, netns_factory: Callable[[str], NetNS]) -> None:
    with make_node(tmp_path, netns_factory("host"), "agent", ipMasq=True) as node:
        pods = [netns_factory("pod") for _ in range(3)]
        ids = [cid() for _ in pods]
        veths = [node.add(p, c)["interfaces"][1]["name"] for p, c in zip(pods, ids, strict=True)]
        # A crash between IPAM allocation and interface set-up: a reservation with no interface.
        crashed = Path(node.data_dir, node.conf.name, "10.99.0.77")
        crashed.write_text("crashedcontainer\r\neth0")

        invoke.gc(node.conf, node.bin_dirs, [Attachment(ids[0], "eth0")])

        links = node.host_links()
        assert veths[0] in links
        assert veths[1] not in links
        assert veths[2] not in links
        assert node.reservations() == ["10.99.0.2"]
        nat = node.host.run(["iptables", "-t", "nat", "-S", "POSTROUTING"]).stdout
        assert ids[0] in nat
        assert ids[1] not in nat
        assert ids[2] not in nat
        node.check(pods[0], ids[0])


def test_version_lists_spec_versions(agent_node: Node) -> None:
    for plugin in ("tinykube-bridge", "tinykube-host-local"):
        report = invoke.version(plugin, agent_node.bin_dirs, cni_version="1.0.0")
        assert report["cniVersion"] == "1.0.0"
        assert {"0.4.0", "1.0.0", "1.1.0"} <= set(report["supportedVersions"])


def test_bridge_options_mtu_hairpin_promisc_are_applied(tmp_path: Path, netns_factory: Callable[[str], NetNS]) -> None:
    opts = {"mtu": 1400, "hairpinMode": True, "promiscMode": True, "bridge": "tkbr0"}
    with make_node(tmp_path, netns_factory("host"), "agent", **opts) as node:
        pod = netns_factory("pod")
        result = node.add(pod, cid())
        veth = result["interfaces"][1]["name"]
        assert result["interfaces"][0]["name"] == "tkbr0"
        assert "mtu 1400" in pod.run(["ip", "link", "show", "eth0"]).stdout
        detail = node.host.run(["ip", "-d", "link", "show", veth]).stdout
        assert "hairpin on" in detail
        assert "mtu 1400" in detail
        assert "PROMISC" in node.host.run(["ip", "link", "show", "tkbr0"]).stdout


def test_ipmasq_rule_added_on_add_and_removed_on_del(tmp_path: Path, netns_factory: Callable[[str], NetNS]) -> None:
    with make_node(tmp_path, netns_factory("host"), "agent", ipMasq=True) as node:
        pod = netns_factory("pod")
        c = cid()
        node.add(pod, c)
        rules = node.host.run(["iptables", "-t", "nat", "-S"]).stdout
        assert f"-s 10.99.0.2/32 -m comment --comment tinykube:tknet:{c}:eth0" in rules.replace('"', "")
        assert "-j MASQUERADE" in rules
        node.check(pod, c)
        node.delete(pod, c)
        assert c not in node.host.run(["iptables", "-t", "nat", "-S"]).stdout


def test_missing_netns_is_container_unknown_and_leaves_nothing(node: Node) -> None:
    with pytest.raises(ContainerUnknown):
        invoke.add(node.conf, cid(), "/run/netns/does-not-exist", "eth0", node.bin_dirs, handlers=node.handlers)
    assert node.reservations() == []
    assert "veth" not in node.host_links()


def test_conflist_written_by_install_is_loadable_and_valid_json(agent_node: Node) -> None:
    doc = json.loads(Path(agent_node.conf_dir, "10-tinykube.conflist").read_text())
    assert doc["plugins"][0]["type"] == "tinykube-bridge"
    first_line = Path(agent_node.bin_dir, "tinykube-bridge").read_text().splitlines()[0]
    assert first_line.startswith("#!/")
    assert first_line.endswith(" -IS")


def test_dual_stack_add_gives_both_families_addresses_and_default_routes(
    tmp_path: Path, netns_factory: Callable[[str], NetNS]
) -> None:
    ranges = [[{"subnet": "10.96.5.0/24"}], [{"subnet": "fd00:5::/64"}]]
    with make_node(tmp_path, netns_factory("host"), "agent") as node:
        doc = json.loads(Path(node.conf_dir, "10-tinykube.conflist").read_text())
        doc["plugins"][0]["ipam"]["ranges"] = ranges
        doc["plugins"][0]["ipMasq"] = True
        conf = invoke.parse_conflist(doc)
        pod = netns_factory("pod")
        c = cid()
        result = node.add(pod, c, conf=conf)
        assert [ip["address"] for ip in result["ips"]] == ["10.96.5.2/24", "fd00:5::2/64"]
        assert {"dst": "::/0", "gw": "fd00:5::1"} in result["routes"]
        assert "fd00:5::2/64" in pod.run(["ip", "-6", "-o", "addr", "show", "dev", "eth0"]).stdout
        assert "default via fd00:5::1" in pod.run(["ip", "-6", "route"]).stdout
        assert f"tinykube:tknet:{c}:eth0" in node.host.run(["ip6tables", "-t", "nat", "-S"]).stdout
        node.check(pod, c, conf=conf)
        node.delete(pod, c, conf=conf)
        assert c not in node.host.run(["ip6tables", "-t", "nat", "-S"]).stdout
        assert node.reservations() == []


def test_executables_fall_back_when_the_agent_dies_and_agent_stops_cleanly(
    tmp_path: Path, netns_factory: Callable[[str], NetNS]
) -> None:
    with make_node(tmp_path, netns_factory("host"), "agent") as node:
        assert node.agent is not None
        node.agent.kill()  # SIGKILL: the socket file stays behind, nobody listens on it
        node.agent.wait()
        assert (tmp_path / "cni.sock").exists()
        pod = netns_factory("pod")
        c = cid()
        assert invoke.pod_ips(node.add(pod, c), "eth0") == ["10.99.0.2"]
        node.delete(pod, c)
        assert node.reservations() == []
    with make_node(tmp_path / "again", netns_factory("host"), "agent") as node:
        assert node.agent is not None
        node.agent.terminate()
        assert node.agent.wait(timeout=10) == 0
        assert not (tmp_path / "again" / "cni.sock").exists()
