"""The harness's promise: whatever a test makes inside its fixtures is gone afterwards."""

from __future__ import annotations

import os
import subprocess

from tests.support import hoststate
from tests.support.cgroups import scratch_cgroup
from tests.support.namespaces import link_hosts, temporary_netns


def test_netns_fixture_leaves_nothing_on_the_host() -> None:
    before = hoststate.snapshot()
    with temporary_netns() as a, temporary_netns() as b:
        a.run(["ip", "link", "add", "br-test", "type", "bridge"])
        a.run(["iptables", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE"])
        link_hosts(a, b, "192.0.2.1/24", "192.0.2.2/24")
        assert (
            a.run(["ping", "-c1", "-W2", "192.0.2.2"], check=False).returncode == 0
            or a.run(["ip", "-o", "addr"]).stdout.count("192.0.2.1") == 1
        )
        during = hoststate.snapshot()
        assert {a.name, b.name} <= during.netns
        # Inside the namespace, the rule and bridge exist; on the host they do not.
        assert "MASQUERADE" in a.run(["iptables-save", "-t", "nat"]).stdout
        assert "br-test" not in during.bridges
    after = hoststate.snapshot()
    assert after.leaks_since(before) == {}


def test_netns_is_removed_even_when_the_test_body_fails() -> None:
    name = None
    try:
        with temporary_netns() as ns:
            name = ns.name
            raise RuntimeError("simulated test failure")
    except RuntimeError:
        pass
    assert name is not None
    assert name not in hoststate.snapshot().netns


def test_private_mounts_do_not_reach_the_host(private_mounts, tmp_path) -> None:
    before = hoststate.snapshot()
    target = tmp_path / "m"
    target.mkdir()
    res = private_mounts(
        ["sh", "-c", f"mount -t tmpfs tinykube-probe {target} && grep -c tinykube-probe /proc/self/mounts"]
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"
    assert hoststate.snapshot().leaks_since(before) == {}


def test_scratch_cgroup_is_removed_with_its_processes() -> None:
    with scratch_cgroup() as cg:
        assert cg.dirs, "no cgroup hierarchy found"
        proc = subprocess.Popen(["sleep", "60"])
        with open(os.path.join(cg.dirs[0], "cgroup.procs"), "w") as f:
            f.write(str(proc.pid))
    proc.wait(timeout=10)
    assert proc.returncode != 0
    assert not any(os.path.exists(d) for d in cg.dirs)


def test_call_in_netns_runs_on_a_thread_inside_the_namespace() -> None:
    import socket

    from tests.support.namespaces import call_in_netns

    with temporary_netns() as ns:
        ns.run(["ip", "link", "add", "probe0", "type", "bridge"])
        inside = call_in_netns(ns, lambda: socket.if_nametoindex("probe0"))
        assert inside > 0
    try:
        socket.if_nametoindex("probe0")
        raise AssertionError("probe0 must not be visible outside the namespace")
    except OSError:
        pass
