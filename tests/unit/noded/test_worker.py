from __future__ import annotations

from typing import Any

from controlplane.resources import CONFIGMAPS, EVENTS, PODS
from noded.errors import RuntimeError_
from noded.manager import PodManager
from noded.types import ContainerState, ExecResult
from tests.unit.noded.conftest import Node, make_pod


def _status(pod: dict[str, Any], name: str = "main") -> dict[str, Any]:
    for c in (pod.get("status") or {}).get("containerStatuses") or []:
        if c["name"] == name:
            return dict(c)
    return {}


def _condition(pod: dict[str, Any], kind: str) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return str(c["status"])
    return ""


async def test_pod_starts_sandbox_then_init_containers_in_order_then_containers(node: Node) -> None:
    node.runtime.on_start = lambda cfg: 0 if cfg.name.startswith("init") else None
    pod = make_pod(
        initContainers=[{"name": "init-1", "image": "busybox"}, {"name": "init-2", "image": "busybox"}],
    )
    await node.create(pod)
    await node.wait(lambda: _condition(node.pod("web"), "Ready") == "True")

    started = [node.runtime.containers[cid].name for verb, cid in node.runtime.calls if verb == "start_container"]
    assert started == ["init-1", "init-2", "main"]
    assert node.runtime.calls[0][0] == "run_pod_sandbox"
    status = node.pod("web")["status"]
    assert status["phase"] == "Running"
    assert status["podIP"].startswith("10.88.")
    assert status["hostIP"] == "192.0.2.10"
    assert [c["state"]["terminated"]["reason"] for c in status["initContainerStatuses"]] == ["Completed"] * 2
    assert {c["type"] for c in status["conditions"]} == {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
    assert "running" in _status(node.pod("web"))["state"]


async def test_failed_init_container_blocks_the_app_containers_and_is_retried(node: Node) -> None:
    node.runtime.on_start = lambda cfg: 1 if cfg.name == "init" else None
    await node.create(make_pod(initContainers=[{"name": "init", "image": "busybox"}]))
    await node.wait(lambda: _init_restarts(node) >= 1)
    assert not [c for c in node.runtime.containers.values() if c.name == "main"]
    assert node.pod("web")["status"]["phase"] == "Pending"
    assert _condition(node.pod("web"), "Initialized") == "False"


def _init_restarts(node: Node) -> int:
    statuses = (node.pod("web").get("status") or {}).get("initContainerStatuses") or [{}]
    return int(statuses[0].get("restartCount", 0))


async def test_crashing_container_backs_off_with_crashloopbackoff_and_counts_restarts(node: Node) -> None:
    node.runtime.on_start = lambda cfg: 1
    await node.create(make_pod())
    seen_backoff = False

    def crashlooping() -> bool:
        nonlocal seen_backoff
        st = _status(node.pod("web"))
        if st.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff":
            seen_backoff = True
        return seen_backoff and st.get("restartCount", 0) >= 2

    await node.wait(crashlooping)
    st = _status(node.pod("web"))
    assert st["lastState"]["terminated"]["exitCode"] == 1
    starts = [node.runtime.containers.get(cid) for verb, cid in node.runtime.calls if verb == "start_container"]
    assert len(starts) >= 3
    # Back-off doubles: the third start waits longer after the second crash than the second did.
    assert node.pod("web")["status"]["phase"] == "Running"
    await node.ctx.events.flush()
    reasons = {e["reason"] for (plural, _, _), e in node.api.objects.items() if plural == EVENTS.plural}
    assert "BackOff" in reasons


async def test_restart_policy_never_leaves_a_failed_container_and_fails_the_pod(node: Node) -> None:
    node.runtime.on_start = lambda cfg: 3
    await node.create(make_pod(restartPolicy="Never"))
    await node.wait(lambda: (node.pod("web").get("status") or {}).get("phase") == "Failed")
    assert len([v for v, _ in node.runtime.calls if v == "start_container"]) == 1
    assert _status(node.pod("web"))["state"]["terminated"]["exitCode"] == 3
    assert _condition(node.pod("web"), "Ready") == "False"


async def test_restart_policy_on_failure_does_not_restart_a_successful_container(node: Node) -> None:
    node.runtime.on_start = lambda cfg: 0
    await node.create(make_pod(restartPolicy="OnFailure"))
    await node.wait(lambda: (node.pod("web").get("status") or {}).get("phase") == "Succeeded")
    assert len([v for v, _ in node.runtime.calls if v == "start_container"]) == 1


async def test_readiness_exec_probe_drives_ready_condition(node: Node) -> None:
    healthy = {"ok": False}
    node.runtime.exec_handler = lambda _c, cmd: ExecResult(b"", b"", 0 if healthy["ok"] else 1)
    probe = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1}
    await node.create(make_pod(containers=[{"name": "main", "image": "busybox", "readinessProbe": probe}]))
    await node.wait(lambda: "running" in _status(node.pod("web")).get("state", {}))
    assert _condition(node.pod("web"), "Ready") == "False"
    healthy["ok"] = True
    await node.wait(lambda: _condition(node.pod("web"), "Ready") == "True")
    healthy["ok"] = False
    await node.wait(lambda: _condition(node.pod("web"), "Ready") == "False")
    assert _status(node.pod("web"))["restartCount"] == 0


async def test_failed_liveness_probe_kills_and_restarts_the_container(node: Node) -> None:
    node.runtime.exec_handler = lambda _c, cmd: ExecResult(b"", b"", 1)
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}
    await node.create(make_pod(containers=[{"name": "main", "image": "busybox", "livenessProbe": probe}]))
    await node.wait(lambda: _status(node.pod("web")).get("restartCount", 0) >= 1)
    assert ("stop_container", "c0002") in node.runtime.calls
    await node.ctx.events.flush()
    reasons = {e["reason"] for (plural, _, _), e in node.api.objects.items() if plural == EVENTS.plural}
    assert {"Unhealthy", "Killing"} <= reasons


async def test_startup_probe_holds_back_readiness_until_it_succeeds(node: Node) -> None:
    calls: list[str] = []

    def handler(_c: object, cmd: Any) -> ExecResult:
        calls.append(cmd[0])
        return ExecResult(b"", b"", 0 if cmd[0] == "ready" or calls.count("startup") >= 3 else 1)

    node.runtime.exec_handler = handler
    spec = {
        "name": "main",
        "image": "busybox",
        "startupProbe": {"exec": {"command": ["startup"]}, "periodSeconds": 1, "failureThreshold": 10},
        "readinessProbe": {"exec": {"command": ["ready"]}, "periodSeconds": 1},
    }
    await node.create(make_pod(containers=[spec]))
    await node.wait(lambda: _condition(node.pod("web"), "Ready") == "True")
    first_ready = calls.index("ready")
    assert calls[:first_ready].count("startup") >= 3
    assert _status(node.pod("web"))["started"] is True


async def test_graceful_deletion_runs_prestop_stops_with_grace_and_releases_the_pod(node: Node) -> None:
    hooks: list[list[str]] = []

    def handler(_c: object, cmd: Any) -> ExecResult:
        hooks.append(list(cmd))
        return ExecResult(b"", b"", 0)

    node.runtime.exec_handler = handler
    spec = {"name": "main", "image": "busybox", "lifecycle": {"preStop": {"exec": {"command": ["drain"]}}}}
    await node.create(make_pod(containers=[spec], terminationGracePeriodSeconds=7))
    await node.wait(lambda: _condition(node.pod("web"), "Ready") == "True")
    cid = node.runtime.running("main")[0].id

    deleting = await node.api.delete(PODS, "web", "default")
    assert deleting is not None
    node.manager.pod_changed(deleting)
    await node.wait(lambda: node.api.stored(PODS, "web", "default") is None)

    assert hooks == [["drain"]]
    assert 0 < node.runtime.stop_timeouts[cid] <= 7
    assert node.runtime.containers == {}
    assert node.runtime.sandboxes == {}


async def test_restarted_noded_adopts_running_pods_without_restarting_them(node: Node) -> None:
    await node.create(make_pod())
    await node.wait(lambda: _condition(node.pod("web"), "Ready") == "True")
    await node.manager.stop()
    calls_before = list(node.runtime.calls)

    fresh = PodManager(node.ctx)
    fresh.pod_changed(node.pod("web"))
    await node.wait(lambda: bool(fresh.workers) and fresh.workers[node.pod("web")["metadata"]["uid"]].pod is not None)
    await fresh.relist()
    for _ in range(5):
        await fresh.relist()
    assert node.runtime.calls == calls_before
    assert _status(node.pod("web"))["restartCount"] == 0
    await fresh.stop()


async def test_pod_deleted_while_noded_was_down_is_cleaned_up(node: Node) -> None:
    await node.create(make_pod())
    await node.wait(lambda: _condition(node.pod("web"), "Ready") == "True")
    await node.manager.stop()
    await node.api.delete(PODS, "web", "default", grace_period_seconds=0)

    fresh = PodManager(node.ctx)
    removed = await fresh.remove_orphans(known_uids=set())
    assert len(removed) == 1
    assert node.runtime.sandboxes == {}
    assert node.runtime.containers == {}


async def test_dead_sandbox_is_recreated_and_containers_restarted_in_it(node: Node) -> None:
    await node.create(make_pod())
    await node.wait(lambda: _condition(node.pod("web"), "Ready") == "True")
    old = next(iter(node.runtime.sandboxes))
    node.runtime.kill_sandbox(old)
    for c in node.runtime.running():
        node.runtime.exit_container(c.id, 137)
    await node.wait(lambda: len(node.runtime.running("main")) == 1 and old not in node.runtime.sandboxes)
    (new_sb,) = node.runtime.sandboxes.values()
    assert new_sb.attempt == 1
    assert node.runtime.running("main")[0].sandbox_id == new_sb.id
    assert node.runtime.running("main")[0].state == ContainerState.RUNNING


async def test_missing_config_map_holds_the_container_with_a_reason_until_it_exists(node: Node) -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "k"}}}]
    await node.create(make_pod(containers=[{"name": "main", "image": "busybox", "env": env}]))

    def waiting_reason() -> str:
        return str(_status(node.pod("web")).get("state", {}).get("waiting", {}).get("reason", ""))

    await node.wait(lambda: waiting_reason() == "CreateContainerConfigError")
    assert node.pod("web")["status"]["phase"] == "Pending"
    await node.api.create(CONFIGMAPS, {"metadata": {"name": "later"}, "data": {"k": "v"}}, "default")
    await node.wait(lambda: "running" in _status(node.pod("web")).get("state", {}), timeout=10)
    (running,) = node.runtime.running("main")
    assert ("X", "v") in node.runtime.configs[running.id].env


async def test_image_that_cannot_be_pulled_shows_err_image_pull(node: Node) -> None:
    async def fail(image: str) -> str:
        raise RuntimeError_(f"pull {image}: registry unreachable")

    node.runtime.pull_image = fail  # type: ignore[method-assign]
    await node.create(make_pod(containers=[{"name": "main", "image": "nope:1"}]))
    await node.wait(
        lambda: _status(node.pod("web")).get("state", {}).get("waiting", {}).get("reason") == "ErrImagePull"
    )
    assert not node.runtime.containers
