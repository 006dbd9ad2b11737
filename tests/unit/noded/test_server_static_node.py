from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import pytest
from aiohttp.test_utils import TestClient, TestServer

from controlplane.pki import issue_client_cert, new_ca
from controlplane.resources import LEASES, NODES, PODS
from noded.node import LEASE_NAMESPACE, MachineFacts, NodeAgent, NodeConfig
from noded.server import NodeServer, serving_context
from noded.static import MIRROR_ANNOTATION, StaticPods, read_manifests, static_pod
from noded.types import ExecResult
from tests.unit.noded.conftest import NODE, Node, make_pod

LOG = b"2026-01-01T00:00:00.1Z stdout F %s\n"


async def _client(node: Node) -> TestClient[aiohttp.web.Request, aiohttp.web.Application]:
    server = NodeServer(node.runtime, node.manager, node.ctx.log_root, NODE)
    client = TestClient(TestServer(server.app()))
    await client.start_server()
    return client


async def _running_pod(node: Node) -> dict[str, Any]:
    pod = await node.create(make_pod())
    await node.wait(lambda: len(node.runtime.running("main")) == 1)
    return dict(pod["metadata"])


async def test_container_logs_serve_current_previous_and_tail(node: Node) -> None:
    meta = await _running_pod(node)
    cdir = Path(node.ctx.log_root, f"default_web_{meta['uid']}", "main")
    cdir.mkdir(parents=True)
    (cdir / "0.log").write_bytes(LOG % b"old")
    (cdir / "1.log").write_bytes(LOG % b"a" + LOG % b"b")
    client = await _client(node)
    try:
        resp = await client.get("/containerLogs/default/web/main")
        assert await resp.text() == "a\nb\n"
        resp = await client.get("/containerLogs/default/web/main?tailLines=1&timestamps=true")
        assert await resp.text() == "2026-01-01T00:00:00.1Z b\n"
        resp = await client.get("/containerLogs/default/web/main?previous=true")
        assert await resp.text() == "old\n"
        resp = await client.get("/containerLogs/default/web/nope")
        assert resp.status == 404
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_exec_runs_exec_sync_and_reports_exit_code_on_the_error_channel(node: Node) -> None:
    await _running_pod(node)
    node.runtime.exec_handler = lambda _c, cmd: ExecResult(b"out:" + " ".join(cmd).encode(), b"err", 3)
    client = await _client(node)
    try:
        ws = await client.ws_connect(
            "/exec/default/web/main?command=echo&command=hi&output=1&error=1", protocols=["v5.channel.k8s.io"]
        )
        assert ws.protocol == "v5.channel.k8s.io"
        frames = [msg.data async for msg in ws if msg.type == aiohttp.WSMsgType.BINARY]
        by_channel = {f[0]: f[1:] for f in frames}
        assert by_channel[1] == b"out:echo hi"
        assert by_channel[2] == b"err"
        status = json.loads(by_channel[3])
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"][0]["message"] == "3"
    finally:
        await client.close()


async def test_stats_summary_lists_pods_with_container_usage(node: Node) -> None:
    meta = await _running_pod(node)
    client = await _client(node)
    try:
        summary = await (await client.get("/stats/summary")).json()
        assert summary["node"]["nodeName"] == NODE
        (pod,) = summary["pods"]
        assert pod["podRef"]["uid"] == meta["uid"]
        assert pod["containers"][0]["memory"]["workingSetBytes"] == 4 << 20
    finally:
        await client.close()


def test_static_pod_uid_is_stable_and_changes_with_the_manifest(tmp_path: Path) -> None:
    doc: dict[str, Any] = {
        "kind": "Pod",
        "metadata": {"name": "s"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    a, b = static_pod(doc, NODE), static_pod(doc, NODE)
    assert a["metadata"]["uid"] == b["metadata"]["uid"]
    assert a["metadata"]["name"] == f"s-{NODE}"
    assert a["spec"]["nodeName"] == NODE
    doc["spec"]["containers"][0]["image"] = "other"
    assert static_pod(doc, NODE)["metadata"]["uid"] != a["metadata"]["uid"]
    (tmp_path / "bad.yaml").write_text("kind: Service\n")
    (tmp_path / "good.yaml").write_text(json.dumps(doc))
    assert [p["metadata"]["name"] for p in read_manifests(str(tmp_path), NODE).values()] == [f"s-{NODE}"]


async def test_static_pods_run_with_mirror_pods_and_stop_when_the_manifest_goes(node: Node, tmp_path: Path) -> None:
    manifest = tmp_path / "s.yaml"
    manifest.write_text("kind: Pod\nmetadata: {name: s}\nspec:\n  containers: [{name: main, image: busybox}]\n")
    static = StaticPods(node.api, node.manager, str(tmp_path), NODE, "node-uid")
    await static.sync()
    await node.wait(lambda: len(node.runtime.running("main")) == 1)
    mirror = node.api.stored(PODS, f"s-{NODE}", "default")
    assert mirror is not None
    assert MIRROR_ANNOTATION in mirror["metadata"]["annotations"]
    assert mirror["metadata"]["ownerReferences"][0]["uid"] == "node-uid"
    await node.wait(lambda: (node.pod(f"s-{NODE}").get("status") or {}).get("phase") == "Running")

    manifest.unlink()
    await static.sync()
    await node.wait(lambda: not node.runtime.sandboxes)
    assert node.api.stored(PODS, f"s-{NODE}", "default") is None


async def test_node_agent_registers_node_and_renews_its_lease(node: Node, tmp_path: Path) -> None:
    facts = MachineFacts(2, 1 << 30, 1 << 34, "h", "m", "b", "6.1", "Debian", "amd64")
    config = NodeConfig(name=NODE, pod_cidr="10.244.1.0/24", node_ip="192.0.2.3", port=10250)
    agent = NodeAgent(node.api, node.runtime, config, facts)
    await agent.register()
    stored = node.api.stored(NODES, NODE)
    assert stored is not None
    assert stored["spec"]["podCIDR"] == "10.244.1.0/24"
    assert stored["status"]["nodeInfo"]["containerRuntimeVersion"] == "fake://0.0.1"
    lease = node.api.stored(LEASES, NODE, LEASE_NAMESPACE)
    assert lease is not None
    first = lease["spec"]["renewTime"]
    await agent.renew_lease()
    renewed = node.api.stored(LEASES, NODE, LEASE_NAMESPACE)
    assert renewed is not None
    assert renewed["spec"]["renewTime"] >= first
    assert int(renewed["metadata"]["resourceVersion"]) > int(lease["metadata"]["resourceVersion"])
    # Registering again (a restarted noded) adopts the existing Node.
    await NodeAgent(node.api, node.runtime, config, facts).register()
    assert node.api.stored(NODES, NODE) is not None


async def test_node_endpoint_requires_a_client_certificate_from_the_cluster_ca(node: Node, tmp_path: Path) -> None:
    ca = new_ca("cluster")
    ctx = serving_context(str(tmp_path / "pki"), NODE, "127.0.0.1", ca.cert_pem)
    app = NodeServer(node.runtime, node.manager, node.ctx.log_root, NODE).app()
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"https://127.0.0.1:{port}/healthz"
    try:
        pair = issue_client_cert(ca, "kube-apiserver-kubelet-client")
        (tmp_path / "c.crt").write_bytes(pair.cert_pem)
        (tmp_path / "c.key").write_bytes(pair.key_pem)
        client_ctx = ssl.create_default_context()
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        anonymous = ssl.create_default_context()
        anonymous.check_hostname = False
        anonymous.verify_mode = ssl.CERT_NONE
        client_ctx.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
        async with aiohttp.ClientSession() as http:
            async with http.get(url, ssl=client_ctx) as resp:
                assert resp.status == 200
                assert await resp.text() == "ok"
            with pytest.raises(aiohttp.ClientError):
                async with http.get(url, ssl=anonymous) as resp:
                    await resp.read()
    finally:
        await runner.cleanup()
