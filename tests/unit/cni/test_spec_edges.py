"""Spec-level parsing and output: env and config validation codes, VERSION, error JSON, wire format,
iptables text, installed executables."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

from cni import config, edge, masq, wire
from cni.errors import CniError, DecodeFailure, IncompatibleVersion, InvalidConfig, InvalidEnvironment
from cni.install import install
from cni.types import PluginRequest


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (PluginRequest("", "c", "/ns", "eth0", "", "/bin"), InvalidEnvironment),
        (PluginRequest("ADD", "", "/ns", "eth0", "", "/bin"), InvalidEnvironment),
        (PluginRequest("ADD", "-bad", "/ns", "eth0", "", "/bin"), InvalidEnvironment),
        (PluginRequest("ADD", "c", "", "eth0", "", "/bin"), InvalidEnvironment),
        (PluginRequest("ADD", "c", "/ns", "a" * 16, "", "/bin"), InvalidEnvironment),
        (PluginRequest("ADD", "c", "/ns", "eth0", "novalue", "/bin"), InvalidEnvironment),
        (PluginRequest("ADD", "c", "/ns", "eth0", "", ""), InvalidEnvironment),
    ],
)
def test_environment_validation_gives_code_4(request_: PluginRequest, error: type[CniError]) -> None:
    with pytest.raises(error) as err:
        config.parse_env(request_)
    assert err.value.code == 4


def test_del_tolerates_missing_netns_and_cni_args_parse() -> None:
    env = config.parse_env(PluginRequest("DEL", "c", "", "eth0", "A=1;B=x=y", "/a:/b"))
    assert env.args == {"A": "1", "B": "x=y"}
    assert env.path == ("/a", "/b")


def test_config_decoding_errors_map_to_spec_codes() -> None:
    with pytest.raises(DecodeFailure):
        config.parse_netconf(b"{nope")
    with pytest.raises(IncompatibleVersion):
        config.parse_netconf(b'{"cniVersion": "0.2.0", "name": "n", "type": "t"}')
    with pytest.raises(InvalidConfig):
        config.parse_netconf(b'{"cniVersion": "1.0.0", "name": "bad name", "type": "t"}')
    netconf = config.parse_netconf(b'{"cniVersion": "1.0.0", "name": "n", "type": "t", "mtu": 10}')
    with pytest.raises(InvalidConfig, match="mtu"):
        config.parse_bridge_config(netconf)


def test_range_defaults_and_validation() -> None:
    r = config.parse_range({"subnet": "10.0.0.0/24"})
    assert (str(r.start), str(r.end), str(r.gateway)) == ("10.0.0.1", "10.0.0.254", "10.0.0.1")
    with pytest.raises(InvalidConfig, match="outside"):
        config.parse_range({"subnet": "10.0.0.0/24", "gateway": "10.0.1.1"})
    with pytest.raises(InvalidConfig, match="after"):
        config.parse_range({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.3"})


def test_version_report_and_error_json() -> None:
    response = edge.respond(lambda _r: None, PluginRequest("VERSION", stdin=b'{"cniVersion": "0.4.0"}'))
    report = json.loads(response.stdout)
    assert response.exit_status == 0
    assert report["cniVersion"] == "0.4.0"
    assert "1.1.0" in report["supportedVersions"]

    def boom(_r: PluginRequest) -> None:
        raise InvalidConfig("bad thing", "because")

    failed = edge.respond(boom, PluginRequest("ADD", stdin=b'{"cniVersion": "1.0.0"}'))
    assert failed.exit_status == 1
    assert json.loads(failed.stdout) == {"cniVersion": "1.0.0", "code": 7, "msg": "bad thing", "details": "because"}


def test_wire_round_trip_keeps_stdin_whole() -> None:
    env = ("ADD", "c", "/ns", "eth0", "A=1", "/bin")
    framed = wire.encode_request("tinykube-bridge", env, b'{"x": "a\\u0000b"}')
    assert int.from_bytes(framed[:4], "big") == len(framed) - 4
    assert wire.decode_request(framed[4:]) == ("tinykube-bridge", env, b'{"x": "a\\u0000b"}')


def test_masquerade_restore_text_and_chain_name_limit() -> None:
    addr = ipaddress.ip_interface("10.1.0.5/24")
    text = masq.restore_text("a-very-long-network-name-indeed", "tinykube:n:c:eth0", [addr])
    chain = masq.chain_name("a-very-long-network-name-indeed")
    assert len(chain) <= 28
    assert text.splitlines() == [
        "*nat",
        f":{chain} - [0:0]",
        f"-A {chain} -d 10.1.0.0/24 -j ACCEPT",
        f"-A {chain} ! -d 224.0.0.0/4 -j MASQUERADE",
        f'-A POSTROUTING -s 10.1.0.5/32 -m comment --comment "tinykube:n:c:eth0" -j {chain}',
        "COMMIT",
    ]


def test_installed_executable_answers_version_without_an_agent(tmp_path: Path) -> None:
    conflist = install(
        tmp_path / "bin", tmp_path / "net.d", pod_cidr="10.5.0.0/24", agent_socket=str(tmp_path / "x.sock")
    )
    doc = json.loads(conflist.read_text())
    assert doc["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.5.0.0/24"}]]
    for plugin in ("tinykube-bridge", "tinykube-host-local"):
        proc = subprocess.run(
            [str(tmp_path / "bin" / plugin)],
            input=b'{"cniVersion": "1.0.0"}',
            env={"CNI_COMMAND": "VERSION"},
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["supportedVersions"][-1] == "1.1.0"
    bad = subprocess.run(
        [str(tmp_path / "bin" / "tinykube-host-local")],
        input=b"{",
        env={"CNI_COMMAND": "ADD"},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["code"] == 4
