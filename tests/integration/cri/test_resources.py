import time

from cri.api import api_pb2


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _resources(**kw):
    return api_pb2.LinuxContainerConfig(resources=api_pb2.LinuxContainerResources(**kw))


def test_memory_over_the_limit_is_oomkilled_with_exit_137(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["tail", "/dev/zero"], linux=_resources(memory_limit_in_bytes=32 << 20))
    st = cri.wait_exited(cid, timeout=20)
    assert (st.exit_code, st.reason) == (137, "OOMKilled")


def test_cpu_and_memory_limits_land_in_the_cgroup_and_can_be_updated(cri):
    sid, config = cri.run_pod("p")
    res = _resources(cpu_shares=256, cpu_quota=20000, cpu_period=100000, memory_limit_in_bytes=64 << 20)
    cid = cri.run(sid, config, ["sleep", "60"], linux=res)
    assert _read(cri.cgroup_dir("cpu", "pod-p", cid, "cpu.shares")) == "256"
    assert _read(cri.cgroup_dir("cpu", "pod-p", cid, "cpu.cfs_quota_us")) == "20000"
    assert _read(cri.cgroup_dir("memory", "pod-p", cid, "memory.limit_in_bytes")) == str(64 << 20)
    update = api_pb2.LinuxContainerResources(memory_limit_in_bytes=96 << 20, cpu_quota=50000, cpu_period=100000)
    cri.rt.UpdateContainerResources(api_pb2.UpdateContainerResourcesRequest(container_id=cid, linux=update))
    assert _read(cri.cgroup_dir("memory", "pod-p", cid, "memory.limit_in_bytes")) == str(96 << 20)
    assert _read(cri.cgroup_dir("cpu", "pod-p", cid, "cpu.cfs_quota_us")) == "50000"
    assert cri.status(cid).resources.linux.memory_limit_in_bytes == 96 << 20


def test_fork_bomb_is_contained_by_the_pids_limit(cri):
    sid, config = cri.run_pod("p")
    bomb = "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; wait"
    cid = cri.run(sid, config, ["sh", "-c", bomb], linux=_resources(unified={"pids.max": "16"}))
    time.sleep(1)
    assert int(_read(cri.cgroup_dir("pids", "pod-p", cid, "pids.current"))) <= 16
    assert any("can't fork" in line or "Resource temporarily unavailable" in line for line in cri.log_lines("p"))
    cri.rt.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=0))
    assert cri.status(cid).state == api_pb2.CONTAINER_EXITED


def test_container_and_pod_stats_come_from_the_cgroup(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sh", "-c", "x=$(head -c 2000000 /dev/urandom | md5sum); sleep 60"], labels={"k": "v"})
    time.sleep(0.5)
    stats = cri.rt.ContainerStats(api_pb2.ContainerStatsRequest(container_id=cid)).stats
    assert stats.attributes.id == cid
    assert stats.cpu.usage_core_nano_seconds.value > 0
    assert stats.memory.usage_bytes.value > 0
    listed = cri.rt.ListContainerStats(
        api_pb2.ListContainerStatsRequest(filter=api_pb2.ContainerStatsFilter(label_selector={"k": "v"}))
    )
    assert [s.attributes.id for s in listed.stats] == [cid]
    pod = cri.rt.PodSandboxStats(api_pb2.PodSandboxStatsRequest(pod_sandbox_id=sid)).stats
    assert pod.linux.cpu.usage_core_nano_seconds.value >= stats.cpu.usage_core_nano_seconds.value
    assert [c.attributes.id for c in pod.linux.containers] == [cid]
