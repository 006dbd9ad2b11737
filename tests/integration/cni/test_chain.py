"""Our bridge inside chained conflists: prevResult flows in both directions of the chain."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cni import invoke
from tests.integration.cni.conftest import REFERENCE_BIN, Node, conflist_doc
from tests.support.namespaces import NetNS

PRE_RESULT: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "pre0", "mac": "02:00:00:00:00:01"}],
    "ips": [{"address": "192.0.2.10/24", "interface": 0}],
    "routes": [{"dst": "198.51.100.0/24"}],
    "dns": {"nameservers": ["192.0.2.53"]},
}


def test_our_bridge_after_another_plugin_extends_its_prev_result(
    agent_node: Node, tmp_path: Path, netns_factory: Callable[[str], NetNS]
) -> None:
    node = agent_node
    fake_bin = tmp_path / "fake"
    fake_bin.mkdir()
    script = fake_bin / "pre-plugin"
    script.write_text(
        f"#!/bin/sh\ncat > /dev/null\nif [ \"$CNI_COMMAND\" = ADD ]; then echo '{json.dumps(PRE_RESULT)}'; fi\n"
    )
    script.chmod(0o755)
    node.extra_bins.append(str(fake_bin))
    doc = conflist_doc(node.data_dir)
    doc["cniVersion"] = "1.0.0"
    doc["plugins"].insert(0, {"type": "pre-plugin"})
    conf = invoke.parse_conflist(doc)
    pod = netns_factory("pod")
    c = uuid.uuid4().hex
    result = node.add(pod, c, conf=conf)
    names = [i["name"] for i in result["interfaces"]]
    assert names[:2] == ["pre0", "cni0"]
    assert names[3] == "eth0"
    assert result["ips"][0] == PRE_RESULT["ips"][0]
    assert result["ips"][1]["interface"] == 3
    assert result["interfaces"][3]["sandbox"] == pod.path
    assert {"dst": "198.51.100.0/24"} in result["routes"]
    assert result["dns"]["nameservers"] == ["192.0.2.53"]
    node.check(pod, c, conf=conf)
    node.delete(pod, c, conf=conf)
    assert node.reservations() == []


@pytest.mark.skipif(not os.path.exists(f"{REFERENCE_BIN}/portmap"), reason="reference portmap missing")
def test_reference_portmap_after_our_bridge_gets_our_result(
    agent_node: Node, netns_factory: Callable[[str], NetNS]
) -> None:
    node = agent_node
    node.extra_bins.append(REFERENCE_BIN)
    doc = conflist_doc(node.data_dir)
    doc["cniVersion"] = "1.0.0"
    doc["plugins"].append({"type": "portmap", "capabilities": {"portMappings": True}})
    conf = invoke.parse_conflist(doc)
    pod = netns_factory("pod")
    c = uuid.uuid4().hex
    mappings = {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]}
    result = invoke.add(conf, c, pod.path, "eth0", node.bin_dirs, capability_args=mappings, cache_dir=node.cache_dir)
    assert invoke.pod_ips(result, "eth0") == ["10.99.0.2"]
    nat = node.host.run(["iptables-save", "-t", "nat"]).stdout
    assert "--dport 18080" in nat
    assert "10.99.0.2:80" in nat
    invoke.delete(conf, c, pod.path, "eth0", node.bin_dirs, capability_args=mappings, cache_dir=node.cache_dir)
    assert "--dport 18080" not in node.host.run(["iptables-save", "-t", "nat"]).stdout
    assert node.reservations() == []
