from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from noded.backoff import Backoff
from noded.errors import PodSpecError
from noded.logs import parse_line, read_log, render, tail
from noded.node import MachineFacts, NodeConfig, lease_object, node_status
from noded.podspec import container_mounts, expand, field_value, sandbox_config
from noded.probes import ProbeResult, ProbeSpec
from noded.quantity import linux_resources, parse_quantity, qos_class
from noded.status import Observed, container_status, phase, pod_status
from noded.types import Container, ContainerState, LinuxResources, Sandbox, SandboxState


@pytest.mark.parametrize(
    ("text", "value"),
    [("250m", "0.25"), ("1", "1"), ("1.5", "1.5"), ("64Mi", str(64 * 2**20)), ("1G", "1000000000"), ("2e3", "2000")],
)
def test_quantities_parse_exactly(text: str, value: str) -> None:
    assert parse_quantity(text) == Fraction(value)


def test_bad_quantity_is_a_pod_spec_error() -> None:
    with pytest.raises(PodSpecError):
        parse_quantity("lots")


def test_requests_and_limits_become_cri_cgroup_values() -> None:
    res = linux_resources({"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "128Mi"}})
    assert res == LinuxResources(cpu_period=100_000, cpu_quota=50_000, cpu_shares=256, memory_limit_in_bytes=128 << 20)
    # A request defaults to the limit; tiny requests keep the kernel's minimum of 2 shares.
    assert linux_resources({"limits": {"cpu": "1"}}).cpu_shares == 1024
    assert linux_resources({"requests": {"cpu": "1m"}}).cpu_shares == 2
    assert linux_resources(None) == LinuxResources()


def test_qos_class_follows_requests_and_limits() -> None:
    assert qos_class([{"name": "a"}]) == "BestEffort"
    both = {"cpu": "1", "memory": "1Gi"}
    assert qos_class([{"resources": {"limits": both}}]) == "Guaranteed"
    assert qos_class([{"resources": {"limits": both, "requests": {"cpu": "500m"}}}]) == "Burstable"


def test_backoff_restarts_first_crash_at_once_then_doubles_up_to_the_cap() -> None:
    b = Backoff(initial=10, cap=40)
    key = ("uid", "c")
    assert b.remaining(key, finished_at=100, now=100) == 0
    b.restarted(key, now=100)
    assert b.remaining(key, finished_at=101, now=102) == 9
    delays = []
    for t in (150, 200, 250, 300):
        b.restarted(key, now=t)
        delays.append(b.delay(key))
    assert delays == [20, 40, 40, 40]
    b.restarted(key, now=10_000)  # ran longer than twice the cap: starts over
    assert b.delay(key) == 10


def test_probe_result_flips_only_after_thresholds() -> None:
    r = ProbeResult(ProbeSpec(0, 1, 1, success_threshold=2, failure_threshold=3), ok=False, _streak_ok=False)
    assert not r.observe(True)
    assert r.observe(True)
    assert r.ok
    assert not r.observe(False)
    assert not r.observe(False)
    assert r.observe(False)
    assert not r.ok


def test_field_refs_and_variable_expansion() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
        "spec": {"nodeName": "n"},
        "status": {"podIP": "10.0.0.5"},
    }
    assert field_value(pod, "metadata.labels['app']") == "x"
    assert field_value(pod, "status.podIP") == "10.0.0.5"
    assert field_value(pod, "spec.nodeName") == "n"
    assert field_value(pod, "metadata.labels") == 'app="x"'
    assert expand("$(A)-$(B)-$$(A)", {"A": "1"}) == "1-$(B)-$(A)"
    with pytest.raises(PodSpecError):
        field_value(pod, "spec.nope")


def test_sandbox_config_carries_pod_identity_labels_and_host_ports() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]},
    }
    cfg = sandbox_config(pod, attempt=2, log_root="/logs")
    assert cfg.labels["io.kubernetes.pod.uid"] == "u"
    assert cfg.labels["app"] == "x"
    assert cfg.log_directory == "/logs/ns_p_u"
    assert cfg.port_mappings[0].host_port == 8080
    assert cfg.attempt == 2


def test_volume_mounts_resolve_sub_paths_and_reject_escapes() -> None:
    paths = {"data": "/v/data"}
    (m,) = container_mounts({"volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "x"}]}, paths)
    assert (m.host_path, m.container_path, m.readonly) == ("/v/data/x", "/d", False)
    with pytest.raises(PodSpecError):
        container_mounts({"volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "../etc"}]}, paths)
    with pytest.raises(PodSpecError):
        container_mounts({"volumeMounts": [{"name": "other", "mountPath": "/d"}]}, paths)


def _c(name: str, state: ContainerState, *, attempt: int = 0, code: int = 0, cid: str = "") -> Container:
    return Container(cid or f"{name}{attempt}", "sb", name, attempt, "img", state, 1, 2, 3, code)


def _pod(policy: str = "Always", inits: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": "p"},
        "spec": {
            "restartPolicy": policy,
            "containers": [{"name": "a", "image": "img"}],
            "initContainers": [{"name": f"i{n}", "image": "img"} for n in range(inits)],
        },
    }


@pytest.mark.parametrize(
    ("policy", "state", "code", "expected"),
    [
        ("Always", ContainerState.RUNNING, 0, "Running"),
        ("Always", ContainerState.EXITED, 1, "Running"),
        ("Never", ContainerState.EXITED, 0, "Succeeded"),
        ("Never", ContainerState.EXITED, 2, "Failed"),
        ("OnFailure", ContainerState.EXITED, 0, "Succeeded"),
        ("OnFailure", ContainerState.EXITED, 2, "Running"),
        ("Always", ContainerState.CREATED, 0, "Pending"),
    ],
)
def test_phase_follows_container_states_and_restart_policy(
    policy: str, state: ContainerState, code: int, expected: str
) -> None:
    obs = Observed(sandbox=None, containers={"a": [_c("a", state, code=code)]})
    assert phase(_pod(policy), obs) == expected


def test_pending_until_init_containers_succeed_and_failed_when_one_fails_for_good() -> None:
    running_init = Observed(sandbox=None, containers={"i0": [_c("i0", ContainerState.RUNNING)]})
    assert phase(_pod(inits=1), running_init) == "Pending"
    failed_init = Observed(sandbox=None, containers={"i0": [_c("i0", ContainerState.EXITED, code=1)]})
    assert phase(_pod("Never", inits=1), failed_init) == "Failed"
    assert phase(_pod("Always", inits=1), failed_init) == "Pending"


def test_container_status_shows_backoff_with_last_termination_and_restart_count() -> None:
    crashed = _c("a", ContainerState.EXITED, attempt=3, code=1)
    obs = Observed(
        sandbox=None,
        containers={"a": [_c("a", ContainerState.EXITED, attempt=2, code=1), crashed]},
        waiting={"a": ("CrashLoopBackOff", "back-off 20s")},
    )
    st = container_status({"name": "a", "image": "img"}, obs, init=False)
    assert st["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert st["lastState"]["terminated"]["exitCode"] == 1
    assert st["restartCount"] == 3
    assert st["ready"] is False


def test_pod_status_ready_conditions_and_ips() -> None:
    sandbox = Sandbox("sb", "p", "ns", "u", 0, SandboxState.READY, 1, ips=("10.1.0.2",))
    obs = Observed(sandbox=sandbox, containers={"a": [_c("a", ContainerState.RUNNING)]}, host_ip="192.0.2.1", now=5)
    status = pod_status(_pod(), obs)
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}
    assert status["podIP"] == "10.1.0.2"
    assert status["hostIP"] == "192.0.2.1"
    not_ready = pod_status(_pod(), Observed(sandbox=sandbox, containers=obs.containers, ready={"a": False}, now=9))
    assert {c["type"]: c["status"] for c in not_ready["conditions"]}["Ready"] == "False"


def test_unchanged_condition_keeps_its_transition_time() -> None:
    obs = Observed(sandbox=None, containers={"a": [_c("a", ContainerState.RUNNING)]}, now=1000)
    first = pod_status(_pod(), obs)
    later = pod_status({**_pod(), "status": first}, Observed(sandbox=None, containers=obs.containers, now=5000))
    assert first["conditions"] == later["conditions"]


def test_cri_log_lines_render_with_tail_and_timestamps(tmp_path: Any) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(
        b"2026-01-01T00:00:00.1Z stdout F one\n"
        b"2026-01-01T00:00:00.2Z stderr P tw\n"
        b"2026-01-01T00:00:00.3Z stderr F o\n"
        b"2026-01-01T00:00:00.4Z stdout F three\n"
        b"2026-01-01T00:00:00.5Z stdout F half-writ"
    )
    data, offset = read_log(str(path), tail_lines=None, timestamps=False)
    assert data == b"one\ntwo\nthree\n"
    assert offset == path.read_bytes().rfind(b"\n") + 1
    assert read_log(str(path), tail_lines=1, timestamps=True)[0] == b"2026-01-01T00:00:00.4Z three\n"
    assert parse_line(b"garbage") is None
    line = parse_line(b"t stdout F x")
    assert line is not None
    assert render(line, timestamps=False) == b"x\n"
    assert tail([b"a", b"b"], 0) == []


FACTS = MachineFacts(2, 4 << 30, 100 << 30, "h", "mid", "bid", "6.1", "Debian", "amd64")


def test_node_status_publishes_capacity_endpoint_and_ready() -> None:
    cfg = NodeConfig(name="n1", pod_cidr="10.244.0.0/24", node_ip="192.0.2.7", port=10250)
    status = node_status(cfg, FACTS, runtime_version="tinykube://0.1", runtime_ok=True)
    assert status["capacity"] == {"cpu": "2", "memory": "4194304Ki", "ephemeral-storage": "104857600Ki", "pods": "110"}
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    assert status["addresses"][0] == {"type": "InternalIP", "address": "192.0.2.7"}
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert status["nodeInfo"]["containerRuntimeVersion"] == "tinykube://0.1"
    down = node_status(cfg, FACTS, runtime_version="", runtime_ok=False, previous=status)
    assert {c["type"]: c["status"] for c in down["conditions"]}["Ready"] == "False"
    lease = lease_object("n1", "uid-1")
    assert lease["spec"]["holderIdentity"] == "n1"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
