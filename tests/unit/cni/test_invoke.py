"""The runtime-side invoker against small fake plugin executables that record what they got."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cni import invoke
from cni.errors import IncompatibleVersion, InvalidConfig, InvalidEnvironment, IOFailure, PluginNotFound, TryAgainLater
from cni.types import Attachment, PluginRequest

FAKE = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    conf = json.load(sys.stdin)
    log = os.path.join({log!r}, "calls.jsonl")
    env = {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}
    with open(log, "a") as f:
        f.write(json.dumps({{"plugin": {name!r}, "env": env, "conf": conf}}) + "\\n")
    if conf.get("fail") == os.environ["CNI_COMMAND"]:
        print(json.dumps({{"cniVersion": conf["cniVersion"], "code": 11, "msg": "busy", "details": "later"}}))
        sys.exit(1)
    if os.environ["CNI_COMMAND"] == "ADD":
        prev = conf.get("prevResult") or {{"cniVersion": conf["cniVersion"], "interfaces": [], "ips": []}}
        prev["interfaces"] = prev["interfaces"] + [{{"name": {name!r}}}]
        print(json.dumps(prev))
    """
)


@pytest.fixture
def bins(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("first", "second"):
        exe = d / name
        exe.write_text(FAKE.format(python=sys.executable, log=str(tmp_path), name=name))
        exe.chmod(0o755)
    (d / "crash").write_text("#!/bin/sh\necho not json; exit 3\n")
    (d / "crash").chmod(0o755)
    return d


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def chain(**extra: Any) -> invoke.NetworkConfigList:
    doc = {
        "cniVersion": "1.1.0",
        "name": "net",
        "plugins": [{"type": "first", "capabilities": {"portMappings": True}}, {"type": "second"}],
    }
    doc.update(extra)
    return invoke.parse_conflist(doc)


def test_add_runs_the_chain_in_order_passing_prev_result_and_runtime_config(tmp_path: Path, bins: Path) -> None:
    result = invoke.add(
        chain(),
        "cid1",
        "/var/run/netns/x",
        "eth0",
        [str(bins)],
        args={"K8S_POD_NAME": "p"},
        capability_args={"portMappings": [{"hostPort": 80}], "bandwidth": {}},
    )
    assert [i["name"] for i in result["interfaces"]] == ["first", "second"]
    first, second = calls(tmp_path)
    assert first["env"] == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "cid1",
        "CNI_NETNS": "/var/run/netns/x",
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "K8S_POD_NAME=p",
        "CNI_PATH": str(bins),
    }
    assert first["conf"]["name"] == "net"
    assert first["conf"]["runtimeConfig"] == {"portMappings": [{"hostPort": 80}]}
    assert "prevResult" not in first["conf"]
    assert "runtimeConfig" not in second["conf"]
    assert second["conf"]["prevResult"]["interfaces"] == [{"name": "first"}]


def test_delete_runs_in_reverse_with_cached_result(tmp_path: Path, bins: Path) -> None:
    cache = tmp_path / "cache"
    result = invoke.add(chain(), "cid1", "/ns", "eth0", [str(bins)], cache_dir=cache)
    invoke.check(chain(), "cid1", "/ns", "eth0", [str(bins)], cache_dir=cache)
    invoke.delete(chain(), "cid1", "/ns", "eth0", [str(bins)], cache_dir=cache)
    dels = [c for c in calls(tmp_path) if c["env"]["CNI_COMMAND"] == "DEL"]
    assert [c["plugin"] for c in dels] == ["second", "first"]
    assert all(c["conf"]["prevResult"] == result for c in dels)
    assert list(cache.iterdir()) == []


def test_plugin_error_json_becomes_typed_exception_and_add_cleans_up(tmp_path: Path, bins: Path) -> None:
    conf = invoke.parse_conflist(
        {"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "first"}, {"type": "second", "fail": "ADD"}]}
    )
    with pytest.raises(TryAgainLater) as err:
        invoke.add(conf, "cid1", "/ns", "eth0", [str(bins)])
    assert (err.value.code, err.value.msg, err.value.details) == (11, "busy", "later")
    commands = [(c["plugin"], c["env"]["CNI_COMMAND"]) for c in calls(tmp_path)]
    assert commands == [("first", "ADD"), ("second", "ADD"), ("second", "DEL"), ("first", "DEL")]


def test_missing_plugin_and_garbage_output(bins: Path) -> None:
    conf = invoke.parse_conflist({"cniVersion": "1.0.0", "name": "n", "type": "nope"})
    with pytest.raises(PluginNotFound):
        invoke.add(conf, "c", "/ns", "eth0", [str(bins)], cleanup_on_failure=False)
    crash = invoke.parse_conflist({"cniVersion": "1.0.0", "name": "n", "type": "crash"})
    with pytest.raises(IOFailure, match="exit status 3"):
        invoke.add(crash, "c", "/ns", "eth0", [str(bins)], cleanup_on_failure=False)


def test_status_and_gc_only_for_1_1_and_gc_passes_valid_attachments(tmp_path: Path, bins: Path) -> None:
    invoke.status(chain(cniVersion="1.0.0"), [str(bins)])
    assert calls(tmp_path) == []
    invoke.status(chain(), [str(bins)])
    invoke.gc(chain(), [str(bins)], [Attachment("a", "eth0"), ("b", "net1")])
    gcs = [c for c in calls(tmp_path) if c["env"]["CNI_COMMAND"] == "GC"]
    assert len(gcs) == 2
    assert gcs[0]["conf"]["cni.dev/valid-attachments"] == [
        {"containerID": "a", "ifname": "eth0"},
        {"containerID": "b", "ifname": "net1"},
    ]
    assert "CNI_CONTAINERID" not in gcs[0]["env"]
    invoke.gc(chain(disableGC=True), [str(bins)], [])
    assert len([c for c in calls(tmp_path) if c["env"]["CNI_COMMAND"] == "GC"]) == 2


def test_gc_deletes_cached_attachments_that_are_no_longer_valid(tmp_path: Path, bins: Path) -> None:
    cache = tmp_path / "cache"
    for cid in ("keep", "stale"):
        invoke.add(chain(), cid, "/ns", "eth0", [str(bins)], cache_dir=cache)
    invoke.gc(chain(), [str(bins)], [("keep", "eth0")], cache_dir=cache)
    dels = {c["env"]["CNI_CONTAINERID"] for c in calls(tmp_path) if c["env"]["CNI_COMMAND"] == "DEL"}
    assert dels == {"stale"}
    assert [p.name for p in cache.iterdir()] == ["net-keep-eth0"]


def test_conf_dir_picks_lexically_first_valid_file_and_version_negotiation(tmp_path: Path) -> None:
    d = tmp_path / "net.d"
    d.mkdir()
    (d / "05-broken.conflist").write_text("{")
    (d / "20-b.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "b", "plugins": [{"type": "x"}]}))
    (d / "10-a.conf").write_text(json.dumps({"cniVersions": ["0.4.0", "1.1.0", "9.0.0"], "name": "a", "type": "x"}))
    (d / "README").write_text("ignored")
    conf = invoke.load_conf_dir(d)
    assert (conf.name, conf.cni_version, conf.plugins) == ("a", "1.1.0", ({"type": "x"},))
    assert invoke.load_conf_dir(d, name="b").name == "b"
    with pytest.raises(InvalidConfig):
        invoke.load_conf_dir(d, name="zzz")
    with pytest.raises(IncompatibleVersion):
        invoke.parse_conflist({"cniVersion": "2.0.0", "name": "x", "type": "y"})


def test_in_process_handlers_get_the_same_request(tmp_path: Path) -> None:
    seen: list[PluginRequest] = []

    def handler(request: PluginRequest) -> dict[str, Any]:
        seen.append(request)
        return {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.5/24"}]}

    conf = invoke.parse_conflist({"cniVersion": "1.0.0", "name": "n", "type": "mine"})
    result = invoke.add(conf, "c", "/ns", "eth0", ["/nowhere"], handlers={"mine": handler})
    assert invoke.pod_ips(result) == ["10.0.0.5"]
    assert (seen[0].command, seen[0].container_id, seen[0].path) == ("ADD", "c", "/nowhere")
    assert json.loads(seen[0].stdin)["name"] == "n"


def test_invalid_container_id_is_refused_before_exec(bins: Path) -> None:
    with pytest.raises(InvalidEnvironment, match="invalid container id"):
        invoke.add(chain(), "../etc", "/ns", "eth0", [str(bins)])
    assert not os.path.exists(bins.parent / "calls.jsonl")


def test_agent_handlers_fall_back_to_exec_when_no_agent_listens(tmp_path: Path, bins: Path) -> None:
    from cni.client import agent_handlers

    handlers = agent_handlers(str(tmp_path / "absent.sock"), ["first", "second"])
    result = invoke.add(chain(), "cid1", "/ns", "eth0", [str(bins)], handlers=handlers)
    assert [i["name"] for i in result["interfaces"]] == ["first", "second"]
    assert [c["plugin"] for c in calls(tmp_path)] == ["first", "second"]
