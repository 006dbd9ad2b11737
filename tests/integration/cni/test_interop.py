"""Our plugins and the reference `bridge` + `host-local` (Debian containernetworking-plugins) on the
same inputs: results and the resulting kernel state are compared field by field. Mixed chains (our
bridge with the reference IPAM and the other way round) prove the two speak the same protocol and
share the same on-disk IPAM layout."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cni import invoke
from cni.invoke import NetworkConfigList
from tests.integration.cni.conftest import REFERENCE_BIN, Node, make_node
from tests.support.namespaces import NetNS

pytestmark = pytest.mark.skipif(not os.path.exists(f"{REFERENCE_BIN}/bridge"), reason="reference plugins missing")


def conflist(bridge_type: str, ipam_type: str, data_dir: str) -> NetworkConfigList:
    return invoke.parse_conflist(
        {
            "cniVersion": "1.0.0",
            "name": "interop",
            "plugins": [
                {
                    "type": bridge_type,
                    "bridge": "cni0",
                    "isGateway": True,
                    "isDefaultGateway": True,
                    "hairpinMode": True,
                    "mtu": 1450,
                    "ipam": {
                        "type": ipam_type,
                        "ranges": [[{"subnet": "10.97.0.0/24", "rangeStart": "10.97.0.10"}]],
                        "routes": [{"dst": "192.168.50.0/24"}],
                        "dataDir": data_dir,
                    },
                }
            ],
        }
    )


def ip_json(ns: NetNS, *argv: str) -> Any:
    return json.loads(ns.run(["ip", "-j", *argv]).stdout)


def pod_state(pod: NetNS) -> dict[str, Any]:
    (link,) = ip_json(pod, "link", "show", "eth0")
    addrs = [
        (a["local"], a["prefixlen"], a.get("broadcast"), a["scope"])
        for a in ip_json(pod, "addr", "show", "dev", "eth0")[0]["addr_info"]
        if a["family"] == "inet"
    ]
    routes = sorted(
        (r["dst"], r.get("gateway"), r["dev"], r.get("scope"), r.get("protocol")) for r in ip_json(pod, "route")
    )
    return {
        "mtu": link["mtu"],
        "up": "UP" in link["flags"],
        "kind": link.get("link_type"),
        "addrs": addrs,
        "routes": routes,
    }


def host_state(host: NetNS, veth: str) -> dict[str, Any]:
    (bridge,) = ip_json(host, "-d", "link", "show", "cni0")
    (port,) = ip_json(host, "-d", "link", "show", veth)
    bridge_addrs = [
        (a["local"], a["prefixlen"])
        for a in ip_json(host, "addr", "show", "dev", "cni0")[0]["addr_info"]
        if a["family"] == "inet"
    ]
    slave = port["linkinfo"]["info_slave_data"]
    return {
        "bridge_kind": bridge["linkinfo"]["info_kind"],
        "bridge_mtu": bridge["mtu"],
        "bridge_addrs": bridge_addrs,
        "port_master": port["master"],
        "port_mtu": port["mtu"],
        "hairpin": slave["hairpin"],
    }


def comparable_result(result: dict[str, Any], pod: NetNS) -> dict[str, Any]:
    """The result without values that are random by design (MACs, host veth names)."""
    interfaces = [{k: v for k, v in i.items() if k != "mac"} for i in result["interfaces"]]
    interfaces[1]["name"] = "<veth>"
    interfaces[2]["sandbox"] = interfaces[2]["sandbox"].replace(pod.path, "<pod>")
    return {
        "cniVersion": result["cniVersion"],
        "interfaces": interfaces,
        "ips": result["ips"],
        "routes": sorted(result.get("routes", []), key=lambda r: r["dst"]),
        "dns": result.get("dns", {}),
    }


@pytest.fixture
def reference_node(tmp_path: Path, netns_factory: Callable[[str], NetNS]) -> Iterator[Node]:
    with make_node(tmp_path / "ref", netns_factory("href"), "agent") as n:
        n.extra_bins.append(REFERENCE_BIN)
        yield n


@pytest.fixture
def our_node(tmp_path: Path, netns_factory: Callable[[str], NetNS]) -> Iterator[Node]:
    with make_node(tmp_path / "ours", netns_factory("hours"), "agent") as n:
        n.extra_bins.append(REFERENCE_BIN)
        yield n


def attach(node: Node, conf: NetworkConfigList, pod: NetNS) -> tuple[dict[str, Any], str]:
    from cni.netlink import thread_in_netns

    c = uuid.uuid4().hex
    fd = os.open(node.host.path, os.O_RDONLY)
    try:
        with thread_in_netns(fd):
            return node.add(pod, c, conf=conf), c
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("bridge_type", "ipam_type"),
    [
        pytest.param("tinykube-bridge", "tinykube-host-local", id="ours"),
        pytest.param("tinykube-bridge", "host-local", id="our-bridge+reference-ipam"),
        pytest.param("bridge", "tinykube-host-local", id="reference-bridge+our-ipam"),
    ],
)
def test_same_inputs_give_the_same_result_and_kernel_state_as_the_reference(
    reference_node: Node,
    our_node: Node,
    netns_factory: Callable[[str], NetNS],
    bridge_type: str,
    ipam_type: str,
) -> None:
    ref_conf = conflist("bridge", "host-local", reference_node.data_dir)
    our_conf = conflist(bridge_type, ipam_type, our_node.data_dir)
    ref_pods = [netns_factory("rpod") for _ in range(2)]
    our_pods = [netns_factory("opod") for _ in range(2)]
    for ref_pod, our_pod in zip(ref_pods, our_pods, strict=True):
        ref_result, ref_id = attach(reference_node, ref_conf, ref_pod)
        our_result, our_id = attach(our_node, our_conf, our_pod)
        assert comparable_result(our_result, our_pod) == comparable_result(ref_result, ref_pod)
        assert pod_state(our_pod) == pod_state(ref_pod)
        ref_host = host_state(reference_node.host, ref_result["interfaces"][1]["name"])
        our_host = host_state(our_node.host, our_result["interfaces"][1]["name"])
        assert our_host == ref_host
        # Both IPAMs leave the same on-disk reservation (file per address holding id and ifname).
        ref_file = Path(reference_node.data_dir, "interop", invoke.pod_ips(ref_result)[0]).read_bytes()
        our_file = Path(our_node.data_dir, "interop", invoke.pod_ips(our_result)[0]).read_bytes()
        assert our_file.replace(our_id.encode(), b"<id>") == ref_file.replace(ref_id.encode(), b"<id>")
