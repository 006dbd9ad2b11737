import os
import re
import time

import grpc
import pytest

from cri.api import api_pb2

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) (.*)$")


def test_container_runs_logs_in_cri_format_and_records_exit(cri):
    sid, config = cri.run_pod("p")
    before = time.time_ns()
    cid = cri.run(sid, config, ["sh", "-c", "echo out; echo err >&2; printf partial; exit 3"])
    st = cri.wait_exited(cid)
    assert (st.exit_code, st.reason) == (3, "Error")
    assert before < st.created_at <= st.started_at <= st.finished_at
    lines = cri.log_lines("p")
    matches = [LOG_LINE.match(line) for line in lines]
    parsed = [m.groups() for m in matches if m]
    assert len(parsed) == len(lines) > 0
    assert ("stdout", "F", "out") in parsed
    assert ("stderr", "F", "err") in parsed
    assert ("stdout", "F", "partial") in parsed
    assert st.log_path.endswith("p/c/0.log")


def test_container_joins_pod_namespaces_but_has_its_own_mount_namespace(cri):
    sid, config = cri.run_pod("p", pid=api_pb2.POD)
    holder = int(cri.pod_status(sid).info["pid"])
    cid = cri.run(sid, config, ["sleep", "60"])
    pid = int(cri.rt.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid, verbose=True)).info["pid"])
    for kind in ("net", "ipc", "uts", "pid"):
        assert os.readlink(f"/proc/{pid}/ns/{kind}") == os.readlink(f"/proc/{holder}/ns/{kind}")
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink(f"/proc/{holder}/ns/mnt")
    # the second container of the pod sees the first one's process (shared pid namespace)
    other = cri.run(sid, config, ["sleep", "60"], name="other")
    assert "sleep 60" in cri.sh(other, "ps -o args")
    mounts = cri.sh(cid, "cat /proc/mounts")
    assert mounts.splitlines()[0].startswith("overlay / overlay")
    assert all(
        m in mounts for m in (" /proc proc", " /dev tmpfs", " /sys sysfs ro", " /dev/shm tmpfs", " /dev/pts devpts")
    )


def test_env_args_cwd_and_bind_mounts(cri, tmp_path):
    data = tmp_path / "vol"
    data.mkdir()
    (data / "hello.txt").write_text("from host\n")
    sid, config = cri.run_pod("p")
    mounts = [api_pb2.Mount(container_path="/data", host_path=str(data), readonly=True)]
    envs = [api_pb2.KeyValue(key="GREETING", value="hi there")]
    cid = cri.run(sid, config, ["sleep"], args=["60"], envs=envs, working_dir="/tmp/w", mounts=mounts)
    out = cri.sh(cid, 'echo "$GREETING"; pwd; cat /data/hello.txt; touch /data/x 2>&1 || echo ro')
    lines = out.splitlines()
    assert lines[:3] == ["hi there", "/tmp/w", "from host"]
    assert lines[-1] == "ro"
    assert "sleep 60" in cri.sh(cid, "cat /proc/1/cmdline | tr '\\0' ' '")


def test_stop_uses_sigterm_then_sigkill_after_the_timeout(cri):
    sid, config = cri.run_pod("p", pid=api_pb2.POD)
    polite = cri.run(sid, config, ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"], name="polite")
    stubborn = cri.run(sid, config, ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], name="stubborn")
    time.sleep(0.2)
    t0 = time.monotonic()
    cri.rt.StopContainer(api_pb2.StopContainerRequest(container_id=polite, timeout=10))
    assert time.monotonic() - t0 < 3
    assert cri.status(polite).exit_code == 0
    t0 = time.monotonic()
    cri.rt.StopContainer(api_pb2.StopContainerRequest(container_id=stubborn, timeout=1))
    assert 0.9 < time.monotonic() - t0 < 5
    st = cri.status(stubborn)
    assert (st.state, st.exit_code) == (api_pb2.CONTAINER_EXITED, 137)
    cri.rt.StopContainer(api_pb2.StopContainerRequest(container_id=stubborn, timeout=1))  # idempotent


def test_list_containers_filters_and_remove_is_idempotent(cri):
    sid, config = cri.run_pod("p")
    running = cri.run(sid, config, ["sleep", "60"], name="r", labels={"role": "r"})
    created = cri.create(sid, config, ["true"], name="c", labels={"role": "c"})

    def ids(**f):
        req = api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(**f))
        return {c.id for c in cri.rt.ListContainers(req).containers}

    assert ids() == {running, created}
    assert ids(pod_sandbox_id=sid) == {running, created}
    assert ids(state=api_pb2.ContainerStateValue(state=api_pb2.CONTAINER_RUNNING)) == {running}
    assert ids(state=api_pb2.ContainerStateValue(state=api_pb2.CONTAINER_CREATED)) == {created}
    assert ids(label_selector={"role": "c"}) == {created}
    assert ids(id=running[:10]) == {running}
    for _ in range(2):
        cri.rt.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=running))
    assert ids() == {created}
    assert not os.path.exists(cri.cgroup_dir("memory", "pod-p", running))


def test_exec_sync_returns_output_and_exit_code_and_honours_timeout(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sleep", "60"], envs=[api_pb2.KeyValue(key="X", value="1")])
    r = cri.exec(cid, "sh", "-c", "echo $X; echo e >&2; hostname; exit 4")
    assert (r.stdout, r.stderr, r.exit_code) == (b"1\np\n", b"e\n", 4)
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        cri.exec(cid, "sleep", "30", timeout=1)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 5
    assert "sleep 30" not in cri.sh(cid, "ps -o args")


def test_start_failure_is_reported_and_container_is_exited_with_start_error(cri):
    sid, config = cri.run_pod("p")
    cid = cri.create(sid, config, ["/no/such/binary"])
    with pytest.raises(grpc.RpcError) as err:
        cri.rt.StartContainer(api_pb2.StartContainerRequest(container_id=cid))
    assert "/no/such/binary" in err.value.details()
    st = cri.status(cid)
    assert (st.state, st.reason) == (api_pb2.CONTAINER_EXITED, "StartError")


def test_reopen_container_log_writes_to_a_fresh_file(cri, tmp_path):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sh", "-c", "while true; do echo tick; sleep 0.05; done"])
    log = tmp_path / "logs" / "p" / "c" / "0.log"
    time.sleep(0.2)
    os.rename(log, str(log) + ".1")
    cri.rt.ReopenContainerLog(api_pb2.ReopenContainerLogRequest(container_id=cid))
    time.sleep(0.3)
    assert "tick" in log.read_text()


def test_host_to_container_propagation_shows_later_node_mounts(cri, tmp_path):
    import subprocess

    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "src", str(shared)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        sid, config = cri.run_pod("p")
        mounts = [
            api_pb2.Mount(
                container_path="/vol", host_path=str(shared), propagation=api_pb2.PROPAGATION_HOST_TO_CONTAINER
            )
        ]
        cid = cri.run(sid, config, ["sleep", "60"], mounts=mounts)
        (shared / "later").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "later", str(shared / "later")], check=True)
        assert " /vol/later tmpfs" in cri.sh(cid, "cat /proc/mounts")
    finally:
        subprocess.run(["umount", "-R", str(shared)], check=False)


def test_devices_are_bound_into_dev(cri):
    sid, config = cri.run_pod("p")
    devices = [api_pb2.Device(container_path="/dev/extra-zero", host_path="/dev/zero", permissions="r")]
    cid = cri.run(sid, config, ["sleep", "60"], devices=devices)
    assert cri.sh(cid, "test -c /dev/extra-zero && head -c 3 /dev/extra-zero | wc -c").strip() == "3"
