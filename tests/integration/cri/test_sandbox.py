import os

import grpc
import pytest

from cri import linux
from cri.api import api_pb2


def _ns(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_version_and_status_report_runtime_and_network_ready(cri):
    v = cri.rt.Version(api_pb2.VersionRequest())
    assert (v.runtime_name, v.runtime_api_version) == ("tinykube", "v1")
    conditions = {c.type: c.status for c in cri.rt.Status(api_pb2.StatusRequest()).status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}


def test_sandbox_holder_owns_new_namespaces_cgroup_and_gets_a_pod_ip(cri):
    sid, config = cri.run_pod(
        "web", pid=api_pb2.POD, dns_config=api_pb2.DNSConfig(servers=["10.96.0.10"], searches=["svc.local"])
    )
    resp = cri.pod_status(sid)
    st, pid = resp.status, int(resp.info["pid"])
    assert st.state == api_pb2.SANDBOX_READY
    assert st.network.ip.startswith("10.123.0.")
    for kind in ("net", "ipc", "uts", "pid"):
        assert _ns(pid, kind) != _ns(os.getpid(), kind), kind
    with open(cri.cgroup_dir("memory", "pod-web", sid, "cgroup.procs")) as f:
        assert f.read().split() == [str(pid)]
    # a container in the pod sees the hostname, DNS config and IP, and the holder as pid 1
    cid = cri.run(sid, config, ["sleep", "60"])
    out = cri.sh(cid, "hostname; cat /etc/resolv.conf; ip -4 -o addr show eth0; cat /proc/1/cmdline | head -c 40")
    assert "web\n" in out
    assert "nameserver 10.96.0.10\nsearch svc.local\n" in out
    assert f"inet {st.network.ip}/24" in out
    assert "pause" in out.splitlines()[-1] or "sleep" not in out.splitlines()[-1]


def test_pause_holder_rss_is_small(cri):
    sid, _ = cri.run_pod("tiny")
    pid = int(cri.pod_status(sid).info["pid"])
    with open(f"/proc/{pid}/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    assert rss_kb <= 1024


def test_list_pod_sandbox_filters_by_id_state_and_labels(cri):
    a, _ = cri.run_pod("a", labels={"app": "a", "tier": "web"})
    b, _ = cri.run_pod("b", labels={"app": "b"})
    cri.rt.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=b))

    def ids(**f):
        req = api_pb2.ListPodSandboxRequest(filter=api_pb2.PodSandboxFilter(**f))
        return {s.id for s in cri.rt.ListPodSandbox(req).items}

    assert ids() == {a, b}
    assert ids(id=a[:12]) == {a}
    assert ids(state=api_pb2.PodSandboxStateValue(state=api_pb2.SANDBOX_READY)) == {a}
    assert ids(state=api_pb2.PodSandboxStateValue(state=api_pb2.SANDBOX_NOTREADY)) == {b}
    assert ids(label_selector={"tier": "web"}) == {a}
    assert ids(label_selector={"app": "b", "tier": "web"}) == set()


def test_stop_and_remove_are_idempotent_and_release_ip_processes_and_cgroups(cri, tmp_path):
    sid, config = cri.run_pod("gone")
    ip = cri.pod_status(sid).status.network.ip
    holder = int(cri.pod_status(sid).info["pid"])
    cid = cri.run(sid, config, ["sleep", "60"])
    assert os.path.exists(tmp_path / "ipam" / "crit" / ip)
    for _ in range(2):
        cri.rt.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=sid))
    assert cri.pod_status(sid).status.state == api_pb2.SANDBOX_NOTREADY
    assert cri.status(cid).state == api_pb2.CONTAINER_EXITED
    assert linux.process_start_time(holder) is None  # gone (or a zombie awaiting its reaper)
    assert not os.path.exists(tmp_path / "ipam" / "crit" / ip)
    for _ in range(2):
        cri.rt.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=sid))
    assert not os.path.exists(cri.cgroup_dir("memory", "pod-gone"))
    with pytest.raises(grpc.RpcError) as err:
        cri.pod_status(sid)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_failed_cni_add_leaves_no_sandbox_cgroup_or_holder(cri_factory, tmp_path):
    from tests.integration.cri.conftest import write_conflist

    cri = cri_factory()
    write_conflist(cri.conf_dir, tmp_path / "ipam", plugin="no-such-plugin")
    procs_before = set(os.listdir("/proc"))
    with pytest.raises(grpc.RpcError) as err:
        cri.run_pod("broken")
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "no-such-plugin" in err.value.details()
    assert cri.rt.ListPodSandbox(api_pb2.ListPodSandboxRequest()).items == []
    assert os.listdir(os.path.join(cri.handle.root, "sandboxes")) == []
    assert not os.path.exists(cri.cgroup_dir("memory", "pod-broken"))
    assert not os.path.exists(cri.cgroup_dir("pids", "pod-broken"))
    leftover = [p for p in set(os.listdir("/proc")) - procs_before if p.isdigit() and _is_pause(p)]
    assert leftover == []


def _is_pause(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"pause" in f.read()
    except OSError:
        return False


def test_host_network_pod_shares_the_node_network_namespace(cri, netns):
    linux = api_pb2.LinuxPodSandboxConfig(
        cgroup_parent=f"/{cri.cgroup_name}/pod-hn",
        security_context=api_pb2.LinuxSandboxSecurityContext(
            namespace_options=api_pb2.NamespaceOption(network=api_pb2.NODE)
        ),
    )
    sid, config = cri.run_pod("hn", linux=linux)
    assert cri.pod_status(sid).status.network.ip == ""
    cid = cri.run(sid, config, ["sleep", "60"])
    pid = int(cri.rt.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid, verbose=True)).info["pid"])
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(netns.path).st_ino


def test_namespaced_sysctls_apply_to_the_pod_and_node_wide_ones_are_refused(cri):
    linux = api_pb2.LinuxPodSandboxConfig(
        cgroup_parent=f"/{cri.cgroup_name}/pod-sys",
        sysctls={"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmni": "1000"},
    )
    sid, config = cri.run_pod("sys", linux=linux)
    cid = cri.run(sid, config, ["sleep", "60"])
    assert cri.sh(cid, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni").split() == [
        "80",
        "1000",
    ]
    bad = api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{cri.cgroup_name}/pod-bad", sysctls={"vm.swappiness": "1"})
    with pytest.raises(grpc.RpcError) as err:
        cri.run_pod("bad", linux=bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "vm.swappiness" in err.value.details()


def test_failed_pause_holder_start_leaves_nothing_behind(cri):
    # An unknown (but namespaced-looking) sysctl makes the holder fail after it unshared.
    linux = api_pb2.LinuxPodSandboxConfig(
        cgroup_parent=f"/{cri.cgroup_name}/pod-bad", sysctls={"net.ipv4.no_such_knob": "1"}
    )
    with pytest.raises(grpc.RpcError) as err:
        cri.run_pod("bad", linux=linux)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "no_such_knob" in err.value.details()
    assert cri.rt.ListPodSandbox(api_pb2.ListPodSandboxRequest()).items == []
    assert os.listdir(os.path.join(cri.handle.root, "sandboxes")) == []
    assert not os.path.exists(cri.cgroup_dir("memory", "pod-bad"))
