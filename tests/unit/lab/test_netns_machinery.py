"""The netns lab's machinery that runs without root: process records, the state file, the holder
script, the real daemons' command lines, and the CLI's refusals before anything is made."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinykube.lab import netns, netns_cgroups, netns_cli, netns_forward, netns_procs, netns_state
from tinykube.lab.netns_cgroups import LabCgroups, hierarchies
from tinykube.lab.netns_daemons import TinykubeDaemons, host_kubeconfig, ready_nodes
from tinykube.lab.netns_errors import NotRunning
from tinykube.lab.netns_interfaces import NODE_BINDS, NodeDirs
from tinykube.lab.netns_plan import plan
from tinykube.lab.netns_state import LabState


def _exit_status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_stop_ends_a_process_with_sigterm_without_waiting_out_the_grace(tmp_path: Path) -> None:
    rec = netns_procs.record(netns_procs.spawn(["sleep", "60"], log=str(tmp_path / "log")), owner="n", role="r", log="")
    started = time.monotonic()
    netns_procs.stop([rec], grace=5.0)
    assert not netns_procs.is_alive(rec)
    assert time.monotonic() - started < 2.0


def test_stop_kills_a_process_that_ignores_sigterm_once_the_grace_is_over(tmp_path: Path) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ok', flush=True)"
    stubborn += "; time.sleep(60)"
    spawned = netns_procs.spawn([sys.executable, "-c", stubborn], log=str(tmp_path / "log"), stdout_pipe=True)
    assert spawned.stdout is not None
    with open(spawned.stdout, "rb") as out:
        assert out.readline() == b"ok\n"
    rec = netns_procs.record(spawned, owner="n", role="r", log="")
    started = time.monotonic()
    netns_procs.stop([rec], grace=0.5)
    assert not netns_procs.is_alive(rec)
    assert 0.5 <= time.monotonic() - started < 3.0


def test_spawned_processes_run_in_their_own_session_from_the_root_dir(tmp_path: Path) -> None:
    out = tmp_path / "log"
    spawned = netns_procs.spawn(["sh", "-c", "ps -o sid= -p $$; pwd"], log=str(out))
    assert _exit_status(spawned.pid) == 0
    sid, cwd = out.read_text().split()
    assert (int(sid), cwd) == (spawned.pid, "/")


def test_a_record_whose_pid_now_names_another_process_is_not_alive(tmp_path: Path) -> None:
    spawned = netns_procs.spawn(["sleep", "60"], log=str(tmp_path / "log"))
    rec = netns_procs.record(spawned, owner="n", role="r", log="")
    assert netns_procs.is_alive(rec)
    stranger = dataclasses.replace(rec, start_time=rec.start_time + 1)
    assert not netns_procs.is_alive(stranger)
    netns_procs.stop([stranger])  # not the process recorded: left alone
    assert netns_procs.is_alive(rec)
    netns_procs.stop([rec])
    assert not netns_procs.is_alive(rec)


def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    state = LabState(plan=plan(2, mode="vxlan"), state_dir=str(tmp_path), cgroups=LabCgroups("tinykube-lab-x", "a/b"))
    state.netns = ["tklab-hub"]
    state.processes.append(netns_procs.ProcRecord("tklab-node1", "cri", 12, 34, "/log"))
    state.save()
    assert netns_state.load(tmp_path) == state
    with pytest.raises(NotRunning):
        netns_state.load(tmp_path / "nowhere")


def test_holder_binds_relative_to_the_node_root_so_a_bind_over_its_ancestor_cannot_hide_it() -> None:
    node = plan(1).nodes[0]
    script = netns.holder_script(node, Path("/var/lib/tinykube/lab/nodes/tklab-node1")).splitlines()
    assert script[1] == "cd /var/lib/tinykube/lab/nodes/tklab-node1"
    assert "mount --bind lib /var/lib/tinykube" in script
    assert "mount --bind cni-conf /etc/cni/net.d" in script
    assert script.index("mount -t sysfs sysfs /sys") < script.index("mount --move .cgroup-fs /sys/fs/cgroup")
    assert script[-2:] == ["echo ready", "exec sleep infinity >/dev/null"]


def test_cgroup_hierarchies_are_found_once_each_in_a_fake_v1_tree(tmp_path: Path) -> None:
    for name in ("memory", "cpu,cpuacct", "unified"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cgroup.procs").write_text("")
    (tmp_path / "cpu").symlink_to(tmp_path / "cpu,cpuacct")
    (tmp_path / "not-a-hierarchy").mkdir()
    found = hierarchies(str(tmp_path))
    assert sorted(Path(p).name for p in found) == ["cpu,cpuacct", "memory", "unified"]


def test_ready_nodes_counts_only_a_true_ready_condition() -> None:
    nodes: list[dict[str, Any]] = [
        {"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}},
        {"metadata": {"name": "c"}, "status": {}},
    ]
    assert ready_nodes(nodes) == {"a"}


def test_host_kubeconfig_points_every_cluster_at_the_relay(tmp_path: Path) -> None:
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_text(yaml.safe_dump({"clusters": [{"name": "c", "cluster": {"server": "https://172.31.0.1:6443"}}]}))
    host_kubeconfig(src, dst, "https://127.0.0.1:7000")
    assert yaml.safe_load(dst.read_text())["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:7000"
    assert dst.stat().st_mode & 0o777 == 0o600


def test_node_daemons_join_with_the_token_then_run_with_the_node_identity_and_pod_cidr(tmp_path: Path) -> None:
    lab = plan(2)
    cp = tmp_path / "controlplane"
    (cp / "data").mkdir(parents=True)
    (cp / "data" / "node-token").write_text("abcdef.0123456789abcdef\n")
    root = tmp_path / "nodes" / "tklab-node2"
    for key in NODE_BINDS:
        (root / key).mkdir(parents=True)
    dirs = NodeDirs(root=root, logs=tmp_path, cgroup_pods="lab/tklab-node2/pods")
    daemons = TinykubeDaemons(proxy_mode="nftables")
    early = daemons.node_runtime(lab, lab.nodes[1], dirs)
    assert [launch.role for launch in early] == ["cni-agent", "cri"]  # need no API server: start with it
    later = daemons.node(lab, lab.nodes[1], dirs, cp)
    assert [(launch.role, launch.oneshot) for launch in later] == [("join", True), ("node", False), ("proxy", False)]
    argv = {launch.role: launch.argv for launch in [*early, *later]}
    join = argv["join"]
    assert join[join.index("--server") + 1] == "https://172.31.0.1:6443"
    assert join[join.index("--token") + 1] == "abcdef.0123456789abcdef"  # from `tinykube server token create`
    assert join[join.index("--kubeconfig-out") + 1] == "/etc/tinykube/node.kubeconfig"
    node = argv["node"]
    assert node[node.index("--kubeconfig") + 1] == "/etc/tinykube/node.kubeconfig"
    assert node[node.index("--node-name") + 1] == "tklab-node2"
    assert node[node.index("--node-ip") + 1] == "172.31.0.3"
    assert node[node.index("--pod-cidr") + 1] == "10.244.2.0/24"
    assert argv["cni-agent"][-2:] == ("--socket", "/run/tinykube/cni.sock")
    assert argv["cri"][argv["cri"].index("--cgroup-root") + 1] == "lab/tklab-node2/pods"
    assert argv["proxy"][argv["proxy"].index("--mode") + 1] == "nftables"
    assert "10.244.2.0/24" in "".join(p.read_text() for p in (root / "cni-conf").iterdir())


def test_cli_refuses_too_many_nodes_before_making_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state_dir = tmp_path / "lab"
    assert netns_cli.main(["up", "--nodes", "300", "--state-dir", str(state_dir), "--stand-ins"]) == 2
    assert "at most 253 nodes" in capsys.readouterr().err
    assert not state_dir.exists()


@pytest.mark.parametrize("command", ["down", "status"])
def test_cli_says_when_no_lab_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert netns_cli.main([command, "--state-dir", str(tmp_path / "lab")]) == 2
    assert "no lab" in capsys.readouterr().err
    assert not (tmp_path / "lab").exists()


def test_the_cli_module_runs_as_a_script() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tinykube.lab.netns_cli", "up", "--help"], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0
    assert "--nodes" in res.stdout
    assert "--mode {static,vxlan}" in res.stdout


async def test_relay_carries_bytes_both_ways_between_the_listener_and_the_target() -> None:
    async def upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    target = await asyncio.start_server(upper, "127.0.0.1", 0)
    target_port = target.sockets[0].getsockname()[1]
    listener = socket.create_server(("127.0.0.1", 0))
    relay = asyncio.create_task(netns_forward.serve(listener, "127.0.0.1", target_port))
    try:
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        writer.write(b"hello through the relay\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b"HELLO THROUGH THE RELAY\n"
        writer.close()
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        listener.close()
        target.close()
        await target.wait_closed()


def _fake_cgroup_fs(root: Path) -> None:
    """memory puts this process in a/b (as a container host would), pids and cpuset at the root."""
    me = str(os.getpid())
    for hierarchy, own in (("memory", "a/b"), ("pids", ""), ("cpuset", "")):
        (root / hierarchy / own).mkdir(parents=True, exist_ok=True)
        (root / hierarchy / "cgroup.procs").write_text("" if own else me)
        if own:
            (root / hierarchy / own / "cgroup.procs").write_text(me)


def test_a_new_cpuset_cgroup_inherits_its_parents_cpus_and_memory_nodes(tmp_path: Path) -> None:
    # A new v1 cpuset cgroup starts empty and refuses tasks (ENOSPC) until both are set.
    (tmp_path / "cpuset.cpus").write_text("0-1\n")
    (tmp_path / "cpuset.mems").write_text("0\n")
    child = tmp_path / "child"
    child.mkdir()
    (child / "cpuset.cpus").write_text("\n")
    (child / "cpuset.mems").write_text("")
    netns_cgroups._inherit_cpuset(str(child))
    assert (child / "cpuset.cpus").read_text() == "0-1"
    assert (child / "cpuset.mems").read_text() == "0"


def test_lab_cgroups_nest_under_the_callers_cgroup_and_give_runtimes_one_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_cgroup_fs(tmp_path)
    own = {"memory": "a/b", "pids": "", "cpuset": ""}
    monkeypatch.setattr(netns_cgroups, "own_path", lambda h, pid=None: own[Path(h).name])
    cg = netns_cgroups.plan("tinykube-lab-x", str(tmp_path))
    assert cg.runtime_parent == "a/b"
    assert cg.path("node1/pods") == "a/b/tinykube-lab-x/node1/pods"
    assert str(tmp_path / "memory/a/b/tinykube-lab-x") in cg.dirs
    assert str(tmp_path / "pids/tinykube-lab-x") in cg.dirs
    assert str(tmp_path / "pids/a/b/tinykube-lab-x") in cg.dirs  # where a runtime may put pods
    netns_cgroups.create(cg, ["node1/daemons"], str(tmp_path))
    assert (tmp_path / "memory/a/b/tinykube-lab-x/node1/daemons").is_dir()
    assert netns_cgroups.remove(cg) == []
    assert not (tmp_path / "memory/a/b/tinykube-lab-x").exists()
    assert (tmp_path / "memory/a/b").is_dir()


def test_status_lists_nodes_and_processes_and_fails_once_one_exited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sleeper = netns_procs.spawn(["sleep", "60"], log=str(tmp_path / "log"))
    alive = netns_procs.record(sleeper, owner="tklab-node1", role="cri", log="cri.log")
    gone = dataclasses.replace(alive, role="proxy", start_time=alive.start_time - 1, log="proxy.log")
    state = LabState(plan=plan(1), state_dir=str(tmp_path), cgroups=LabCgroups("tinykube-lab-x"), api_port=6443)
    state.processes = [alive]
    state.save()
    try:
        assert netns_cli.main(["status", "--state-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert "tklab-node1      172.31.0.2      10.244.1.0/24      unknown" in out
        assert f"tklab-node1      cri      {alive.pid:>7}  running" in out
        state.processes.append(gone)
        state.save()
        assert netns_cli.main(["status", "--state-dir", str(tmp_path), "--json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert [p["running"] for p in doc["processes"]] == [True, False]
        assert doc["healthy"] is False
    finally:
        netns_procs.stop([alive])


def test_pids_skip_a_cgroup_removed_while_they_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "memory" / "tinykube-lab-x"
    (base / "node1" / "pods" / "gone").mkdir(parents=True)
    (base / "node1" / "cgroup.procs").write_text("41\n42\n")
    (base / "node1" / "pods" / "gone" / "cgroup.procs").write_text("43\n")
    real_open = open

    def racing_open(path: str, *args: Any, **kwargs: Any) -> Any:
        if "/gone/" in str(path):  # cgroup v1: a read after the cgroup's rmdir fails with ENODEV
            raise OSError(errno.ENODEV, "No such device", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(netns_cgroups, "open", racing_open, raising=False)
    assert netns_cgroups.pids(LabCgroups("tinykube-lab-x", dirs=[str(base)])) == {41, 42}
