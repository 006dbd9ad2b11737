"""The bridge plugin's logic against stateful fakes: rollback on failure, idempotent DEL, CHECK, GC."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from cni import hostlocal
from cni.bridge import BridgePlugin, host_veth_name
from cni.errors import CniError, InvalidEnvironment
from cni.testing import FakeMasquerader, FakeNamespace, FakeNetlinkOpener
from cni.types import PluginRequest


class Rig:
    def __init__(self, tmp_path: Path, **options: Any) -> None:
        self.tmp = tmp_path
        self.opener = FakeNetlinkOpener()
        self.masq = FakeMasquerader()
        self.plugin = BridgePlugin(self.opener, self.masq, {"tinykube-host-local": hostlocal.handle})
        self.data_dir = tmp_path / "ipam"
        self.conf: dict[str, Any] = {
            "cniVersion": "1.1.0",
            "name": "net",
            "type": "tinykube-bridge",
            "isGateway": True,
            "isDefaultGateway": True,
            "ipMasq": True,
            "ipam": {"type": "tinykube-host-local", "subnet": "10.1.0.0/24", "dataDir": str(self.data_dir)},
            **options,
        }

    def pod(self) -> tuple[str, FakeNamespace]:
        path = self.tmp / f"ns-{uuid.uuid4().hex[:6]}"
        path.touch()
        return str(path), self.opener.add_netns(str(path))

    def call(self, command: str, cid: str, netns: str, **extra: Any) -> dict[str, Any] | None:
        stdin = json.dumps({**self.conf, **extra}).encode()
        return self.plugin.handle(PluginRequest(command, cid, netns, "eth0", "", "/nonexistent", stdin))

    def reservations(self) -> list[str]:
        d = self.data_dir / "net"
        return sorted(p.name for p in d.iterdir() if p.name[0].isdigit()) if d.exists() else []


def test_add_builds_result_and_wires_both_namespaces(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    path, pod = rig.pod()
    result = rig.call("ADD", "c1", path)
    assert result is not None
    assert [i["name"] for i in result["interfaces"]] == ["cni0", host_veth_name("net", "c1", "eth0"), "eth0"]
    assert result["ips"] == [{"address": "10.1.0.2/24", "gateway": "10.1.0.1", "interface": 2}]
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}]
    eth0 = pod.by_name("eth0")
    assert eth0 is not None
    assert eth0.up
    assert eth0.mac == result["interfaces"][2]["mac"]
    assert [str(a) for a in pod.addresses[eth0.index]] == ["10.1.0.2/24"]
    bridge = rig.opener.host_ns.by_name("cni0")
    assert bridge is not None
    assert [str(a) for a in rig.opener.host_ns.addresses[bridge.index]] == ["10.1.0.1/24"]
    assert len(rig.masq.rules) == 1


def test_failure_after_veth_rolls_back_link_and_address(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    path, pod = rig.pod()
    rig.masq.fail_next_add = True
    with pytest.raises(CniError, match="simulated"):
        rig.call("ADD", "c1", path)
    assert pod.by_name("eth0") is None
    assert [link.kind for link in rig.opener.host_ns.links.values()] == ["bridge"]
    assert rig.reservations() == []


def test_existing_interface_in_pod_is_refused_without_leaks(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    path, _ = rig.pod()
    rig.call("ADD", "c1", path)
    with pytest.raises(InvalidEnvironment, match="already exists"):
        rig.call("ADD", "c2", path)
    assert rig.reservations() == ["10.1.0.2"]


def test_del_twice_and_without_netns_succeeds(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    path, pod = rig.pod()
    rig.call("ADD", "c1", path)
    rig.call("DEL", "c1", path)
    rig.call("DEL", "c1", path)
    rig.call("DEL", "c1", "")
    assert pod.links == {}
    assert rig.reservations() == []
    assert rig.masq.rules == set()


def test_check_reports_missing_route(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    path, pod = rig.pod()
    result = rig.call("ADD", "c1", path)
    rig.call("CHECK", "c1", path, prevResult=result)
    pod.routes.clear()
    with pytest.raises(CniError, match=r"route to 0\.0\.0\.0/0"):
        rig.call("CHECK", "c1", path, prevResult=result)


def test_gc_keeps_valid_attachments_only(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    (p1, _), (p2, pod2) = rig.pod(), rig.pod()
    rig.call("ADD", "keep", p1)
    rig.call("ADD", "drop", p2)
    rig.call("GC", "", "", **{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]})
    assert pod2.links == {}
    assert rig.reservations() == ["10.1.0.2"]
    assert {r[1] for r in rig.masq.rules} == {"tinykube:net:keep:eth0"}


def test_bridge_deleted_behind_our_back_is_recreated_with_its_gateway(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    (p1, _), (p2, pod2) = rig.pod(), rig.pod()
    rig.call("ADD", "c1", p1)
    old = rig.opener.host_ns.by_name("cni0")
    assert old is not None
    rig.opener.host_ns.remove(old.index)
    rig.call("ADD", "c2", p2)
    bridge = rig.opener.host_ns.by_name("cni0")
    assert bridge is not None
    assert bridge.index != old.index
    assert [str(a) for a in rig.opener.host_ns.addresses[bridge.index]] == ["10.1.0.1/24"]
    assert pod2.by_name("eth0") is not None


def test_pre_1_0_config_gets_ips_with_version_field(tmp_path: Path) -> None:
    rig = Rig(tmp_path, cniVersion="0.4.0")
    path, _ = rig.pod()
    result = rig.call("ADD", "c1", path)
    assert result is not None
    assert result["cniVersion"] == "0.4.0"
    assert result["ips"] == [{"address": "10.1.0.2/24", "gateway": "10.1.0.1", "version": "4", "interface": 2}]
