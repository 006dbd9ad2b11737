import os
import time

import grpc
import pytest

from cri.api import api_pb2


def test_kill_9_of_the_daemon_keeps_pods_running_and_records_exits_meanwhile(cri_factory):
    cri = cri_factory()
    sid, config = cri.run_pod("p")
    long = cri.run(sid, config, ["sleep", "60"], name="long")
    short = cri.run(sid, config, ["sh", "-c", "sleep 0.5; echo done; exit 7"], name="short")
    holder = int(cri.pod_status(sid).info["pid"])
    cri.kill()
    time.sleep(1.0)
    assert os.path.exists(f"/proc/{holder}")
    cri.start()
    assert cri.pod_status(sid).status.state == api_pb2.SANDBOX_READY
    assert cri.status(long).state == api_pb2.CONTAINER_RUNNING
    st = cri.status(short)
    assert (st.state, st.exit_code) == (api_pb2.CONTAINER_EXITED, 7)
    assert any(line.endswith(" stdout F done") for line in cri.log_lines("p", "short"))
    assert cri.exec(long, "true").exit_code == 0
    cri.rt.StopContainer(api_pb2.StopContainerRequest(container_id=long, timeout=0))
    assert cri.status(long).exit_code == 137


def _code(call):
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


def test_unknown_ids_are_not_found(cri):
    nope = "f" * 64
    calls = [
        lambda: cri.rt.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=nope)),
        lambda: cri.rt.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=nope)),
        lambda: cri.rt.StartContainer(api_pb2.StartContainerRequest(container_id=nope)),
        lambda: cri.rt.StopContainer(api_pb2.StopContainerRequest(container_id=nope)),
        lambda: cri.rt.ExecSync(api_pb2.ExecSyncRequest(container_id=nope, cmd=["ls"])),
        lambda: cri.rt.ContainerStats(api_pb2.ContainerStatsRequest(container_id=nope)),
        lambda: cri.rt.CreateContainer(
            api_pb2.CreateContainerRequest(pod_sandbox_id=nope, config=api_pb2.ContainerConfig())
        ),
    ]
    for call in calls:
        code, details = _code(call)
        assert code == grpc.StatusCode.NOT_FOUND
        assert nope in details
    # Stop/Remove are idempotent: a sandbox that is gone is already stopped and removed
    cri.rt.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=nope))
    cri.rt.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=nope))
    cri.rt.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=nope))


def test_malformed_configs_are_invalid_argument_with_a_message(cri):
    code, details = _code(lambda: cri.rt.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=api_pb2.PodSandboxConfig())))
    assert (code, "metadata" in details) == (grpc.StatusCode.INVALID_ARGUMENT, True)
    sid, config = cri.run_pod("p")
    cases = {
        "config.metadata.name": api_pb2.ContainerConfig(image=api_pb2.ImageSpec(image="busybox")),
        "config.image.image": api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name="c")),
        "unknown capability": api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"),
            image=api_pb2.ImageSpec(image="busybox"),
            linux=api_pb2.LinuxContainerConfig(
                security_context=api_pb2.LinuxContainerSecurityContext(
                    capabilities=api_pb2.Capability(add_capabilities=["CAP_FLY"])
                )
            ),
        ),
        "does not exist": api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"),
            image=api_pb2.ImageSpec(image="busybox"),
            mounts=[api_pb2.Mount(container_path="/x", host_path="/no/such/dir")],
        ),
        "cpuset": api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"),
            image=api_pb2.ImageSpec(image="busybox"),
            linux=api_pb2.LinuxContainerConfig(resources=api_pb2.LinuxContainerResources(cpuset_cpus="999")),
        ),
    }
    for message, config_c in cases.items():
        req = api_pb2.CreateContainerRequest(pod_sandbox_id=sid, config=config_c, sandbox_config=config)
        code, details = _code(lambda req=req: cri.rt.CreateContainer(req))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (message, details)
        assert message in details or "resources" in details
    # nothing half-created: no container records, no container cgroups
    assert cri.rt.ListContainers(api_pb2.ListContainersRequest()).containers == []
    assert os.listdir(os.path.join(cri.handle.root, "containers")) == []
    pod_cgroup = cri.cgroup_dir("cpuset", "pod-p")
    assert [e for e in os.listdir(pod_cgroup) if os.path.isdir(os.path.join(pod_cgroup, e))] == [sid]


def test_daemon_exits_when_its_launcher_dies_and_a_new_one_takes_over(cri_factory):
    import signal

    cri = cri_factory()
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sleep", "60"])
    daemon = cri.handle.proc
    with open(f"/proc/{daemon.pid}/task/{daemon.pid}/children") as f:
        launcher = int(f.read().split()[0])
    os.kill(launcher, signal.SIGKILL)
    assert daemon.wait(timeout=10) == 1
    cri.start()
    assert cri.status(cid).state == api_pb2.CONTAINER_RUNNING
