"""Bad input gets the spec error code on stdout, a non-zero exit status, and leaves nothing behind
(no interface, no reservation, no held lock: a good ADD right after succeeds)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cni.conftest import Node, make_node
from tests.support.namespaces import NetNS


def plugin_conf(node: Node) -> dict[str, Any]:
    return {**node.conf.plugins[0], "name": node.conf.name, "cniVersion": "1.0.0"}


def spec_env(node: Node, pod: NetNS, **override: str) -> dict[str, str]:
    env = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": uuid.uuid4().hex,
        "CNI_NETNS": pod.path,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": node.bin_dir,
    }
    env.update(override)
    return {k: v for k, v in env.items() if v != "<unset>"}


def assert_nothing_left(node: Node, pod: NetNS) -> None:
    assert node.reservations() == []
    assert "veth" not in node.host_links()
    assert "eth0" not in pod.run(["ip", "-o", "link"]).stdout


CASES = [
    pytest.param({}, b'{"cniVersion": "1.0.0", "name": ', 6, id="malformed-json"),
    pytest.param({}, {"cniVersion": "9.9.9"}, 1, id="unknown-cniVersion"),
    pytest.param({"CNI_COMMAND": "<unset>"}, None, 4, id="missing-CNI_COMMAND"),
    pytest.param({"CNI_CONTAINERID": "<unset>"}, None, 4, id="missing-CNI_CONTAINERID"),
    pytest.param({"CNI_IFNAME": "<unset>"}, None, 4, id="missing-CNI_IFNAME"),
    pytest.param({"CNI_NETNS": "<unset>"}, None, 4, id="missing-CNI_NETNS"),
    pytest.param({"CNI_IFNAME": "bad/name"}, None, 4, id="invalid-ifname"),
    pytest.param({"CNI_NETNS": "/run/netns/nope"}, None, 3, id="netns-does-not-exist"),
    pytest.param({}, {"ipam": {"type": "tinykube-host-local", "ranges": [[{"subnet": "bogus"}]]}}, 7, id="bad-subnet"),
]


@pytest.mark.parametrize(("env_override", "conf_change", "code"), CASES)
def test_bad_input_gives_spec_error_and_leaves_nothing(
    agent_node: Node,
    netns_factory: Callable[[str], NetNS],
    env_override: dict[str, str],
    conf_change: bytes | dict[str, Any] | None,
    code: int,
) -> None:
    node = agent_node
    pod = netns_factory("pod")
    conf = plugin_conf(node)
    if isinstance(conf_change, dict):
        conf.update(conf_change)
    stdin = conf_change if isinstance(conf_change, bytes) else json.dumps(conf).encode()
    proc = node.exec_plugin("tinykube-bridge", spec_env(node, pod, **env_override), stdin)
    assert proc.returncode != 0
    error = json.loads(proc.stdout)
    assert error["code"] == code
    assert error["msg"]
    assert "cniVersion" in error
    assert_nothing_left(node, pod)
    good = node.exec_plugin("tinykube-bridge", spec_env(node, pod), json.dumps(plugin_conf(node)).encode())
    assert good.returncode == 0, good.stdout


def test_exhausted_range_is_try_again_later_and_rolls_back(
    tmp_path: Path, netns_factory: Callable[[str], NetNS]
) -> None:
    with make_node(tmp_path, netns_factory("host"), "agent", subnet="10.98.0.0/30") as node:
        first, second = netns_factory("pod"), netns_factory("pod")
        conf = json.dumps(plugin_conf(node)).encode()
        assert node.exec_plugin("tinykube-bridge", spec_env(node, first), conf).returncode == 0
        proc = node.exec_plugin("tinykube-bridge", spec_env(node, second), conf)
        assert proc.returncode != 0
        assert json.loads(proc.stdout)["code"] == 11
        assert "eth0" not in second.run(["ip", "-o", "link"]).stdout
        assert node.reservations() == ["10.98.0.2"]
        assert node.host_links().count("veth") == 1


def test_failure_after_ipam_rolls_back_the_reservation_and_veth(
    agent_node: Node, netns_factory: Callable[[str], NetNS]
) -> None:
    """The bridge name is taken by a non-bridge link: ADD fails after IPAM allocated an address."""
    node = agent_node
    node.host.run(["ip", "link", "add", "cni0", "type", "veth", "peer", "name", "cni0peer"])
    pod = netns_factory("pod")
    proc = node.exec_plugin("tinykube-bridge", spec_env(node, pod), json.dumps(plugin_conf(node)).encode())
    assert json.loads(proc.stdout)["code"] == 7
    assert node.reservations() == []
    assert "eth0" not in pod.run(["ip", "-o", "link"]).stdout
