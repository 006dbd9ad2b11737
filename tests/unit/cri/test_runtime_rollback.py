"""RunPodSandbox and CreateContainer leave nothing behind when any step fails (failures injected
into stateful fakes of the launcher, cgroups, CNI and the record store)."""

import os

import pytest

from cri.api import api_pb2
from cri.errors import AlreadyExists, CriError, InvalidArgument, InvalidTransition, NotFound
from cri.runtime import Runtime
from cri.sandbox import Deps
from cri.state import ContainerState, SandboxState
from cri.store import Store
from cri.testing.fakes import FakeCgroups, FakeImages, FakeLauncher, FakeNetwork, FakeProcesses


@pytest.fixture
def env(tmp_path):
    procs = FakeProcesses()
    deps = Deps(
        store=Store(str(tmp_path / "root")),
        launcher=FakeLauncher(procs),
        cgroups=FakeCgroups(),
        network=FakeNetwork(),
        images=FakeImages(),
        processes=procs,
        log_root=str(tmp_path / "logs"),
    )
    return Runtime(deps)


def _sandbox_config(name="web"):
    return api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=name, namespace="default", uid=f"uid-{name}"),
        linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"kubepods/pod-{name}"),
        labels={"app": name},
    )


def _container_config(**kw):
    return api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"), image=api_pb2.ImageSpec(image="busybox"), command=["sh"], **kw
    )


def _assert_no_sandbox_left(rt):
    d = rt.deps
    assert d.store.sandboxes == {}
    assert os.listdir(d.store.sandbox_root) == []
    assert d.cgroups.tree == {}
    assert d.network.attached == {}
    assert d.processes.live == {}


def test_run_pod_sandbox_records_holder_cgroups_and_network(env):
    sid = env.run_sandbox(_sandbox_config())
    rec, state = env.sandbox(sid)
    assert state == SandboxState.READY
    assert rec.ips == ["10.88.0.3"]
    assert set(env.deps.cgroups.tree) == {"kubepods/pod-web", f"kubepods/pod-web/{sid}"}
    assert env.deps.network.attached == {sid: f"/proc/{rec.pid}/ns/net"}
    assert os.path.exists(os.path.join(env.deps.store.sandbox_dir(sid), "resolv.conf"))


@pytest.mark.parametrize("step", ["pod cgroup", "pause cgroup", "launcher", "cni add", "save record"])
def test_failed_run_pod_sandbox_leaves_nothing_behind(env, step, monkeypatch):
    d = env.deps
    if step == "pod cgroup":
        d.cgroups.fail_create_call = 0
    elif step == "pause cgroup":
        d.cgroups.fail_create_call = 1
    elif step == "launcher":
        d.launcher.fail_ops.add("sandbox")
    elif step == "cni add":
        d.network.fail_attach = True
    else:

        def broken(rec):
            raise OSError(28, "injected: no space left")

        monkeypatch.setattr(d.store, "save_sandbox", broken)
    with pytest.raises(CriError):
        env.run_sandbox(_sandbox_config())
    _assert_no_sandbox_left(env)


def test_sandbox_names_are_unique_per_attempt(env):
    env.run_sandbox(_sandbox_config())
    with pytest.raises(AlreadyExists):
        env.run_sandbox(_sandbox_config())


def test_stop_and_remove_sandbox_are_idempotent_and_release_everything(env):
    sid = env.run_sandbox(_sandbox_config())
    env.stop_sandbox(sid)
    env.stop_sandbox(sid)
    assert env.sandbox(sid)[1] == SandboxState.NOTREADY
    assert env.deps.network.attached == {}
    env.remove_sandbox(sid)
    env.remove_sandbox(sid)
    env.stop_sandbox("no-such-id")
    _assert_no_sandbox_left(env)
    with pytest.raises(NotFound):
        env.sandbox(sid)


def test_records_survive_a_new_runtime_on_the_same_root(env):
    sid = env.run_sandbox(_sandbox_config())
    cid = env.create_container(sid, _container_config())
    again = Runtime(Deps(**{**env.deps.__dict__, "store": Store(env.deps.store.root)}))
    assert [r.id for r, _ in again.list_sandboxes()] == [sid]
    assert [(r.id, s.state) for r, s in again.list_containers()] == [(cid, ContainerState.CREATED)]


@pytest.mark.parametrize("step", ["unknown image", "cgroup", "resources", "save record"])
def test_failed_create_container_leaves_nothing_behind(env, step, monkeypatch):
    sid = env.run_sandbox(_sandbox_config())
    cgroups_before = dict(env.deps.cgroups.tree)
    config = _container_config()
    if step == "unknown image":
        config = _container_config()
        config.image.image = "nginx"
    elif step == "cgroup":
        env.deps.cgroups.fail_create_call = env.deps.cgroups.creates
    elif step == "resources":
        env.deps.cgroups.fail_resources = True
    else:

        def broken(rec):
            raise OSError(28, "injected: no space left")

        monkeypatch.setattr(env.deps.store, "save_container", broken)
    with pytest.raises(CriError):
        env.create_container(sid, config)
    assert env.deps.store.containers == {}
    assert os.listdir(env.deps.store.container_root) == []
    assert env.deps.cgroups.tree == cgroups_before


def test_bad_resources_are_invalid_argument(env):
    sid = env.run_sandbox(_sandbox_config())
    env.deps.cgroups.fail_resources = True
    with pytest.raises(InvalidArgument, match="resources"):
        env.create_container(sid, _container_config())


def test_container_in_a_stopped_sandbox_is_refused(env):
    sid = env.run_sandbox(_sandbox_config())
    env.stop_sandbox(sid)
    with pytest.raises(InvalidTransition, match="NOTREADY"):
        env.create_container(sid, _container_config())


def test_container_names_are_unique_within_a_sandbox(env):
    sid = env.run_sandbox(_sandbox_config())
    env.create_container(sid, _container_config())
    with pytest.raises(AlreadyExists):
        env.create_container(sid, _container_config())


def test_failed_start_marks_the_container_exited_with_start_error(env):
    sid = env.run_sandbox(_sandbox_config())
    cid = env.create_container(sid, _container_config())
    env.deps.launcher.fail_ops.add("container")
    with pytest.raises(CriError, match="injected"):
        env.start_container(cid)
    _, seen = env.container(cid)
    assert (seen.state, seen.reason, seen.exit_code) == (ContainerState.EXITED, "StartError", 128)
    with pytest.raises(InvalidTransition):
        env.start_container(cid)


def test_remove_sandbox_removes_its_containers(env):
    sid = env.run_sandbox(_sandbox_config())
    cid = env.create_container(sid, _container_config())
    env.remove_sandbox(sid)
    with pytest.raises(NotFound):
        env.container(cid)
    env.remove_container(cid)  # idempotent
    _assert_no_sandbox_left(env)


def test_unknown_container_ids_are_not_found(env):
    for call in (
        lambda: env.start_container("nope"),
        lambda: env.stop_container("nope", 1),
        lambda: env.container("nope"),
        lambda: env.exec_sync("nope", ["ls"], 1),
        lambda: env.create_container("nope", _container_config()),
    ):
        with pytest.raises(NotFound):
            call()


def test_pod_resources_cap_a_pod_cgroup_the_runtime_created(env):
    config = _sandbox_config()
    config.linux.resources.memory_limit_in_bytes = 256 << 20
    env.run_sandbox(config)
    assert env.deps.cgroups.tree["kubepods/pod-web"].memory_limit == 256 << 20
