"""The API over HTTPS: error Status codes for bad requests, watch resumption, paging, subresources."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from controlplane.testing.server import ServerHandle, start_server
from tests.integration.apiserver.helpers import admin_session

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with start_server(tmp_path_factory.mktemp("http"), controllers=False) as srv:
        yield srv


@pytest.fixture
async def http(server: ServerHandle) -> AsyncIterator[aiohttp.ClientSession]:
    async with admin_session(server) as session:
        yield session
    await asyncio.sleep(0.25)  # lets the SSL transports finish closing (aiohttp's advice for TLS)


async def _status(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json(content_type=None)
    assert body["kind"] == "Status", body
    assert body["code"] == resp.status
    return body


@pytest.mark.parametrize(
    ("body", "ctype", "code"),
    [
        (b'{"metadata": {"name": ', "application/json", 400),  # truncated
        (b"\xff\xfe\x00garbage", "application/json", 400),  # not JSON at all
        (b"[1, 2]", "application/json", 400),  # not an object
        (b'{"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x"}}', "application/json", 400),  # wrong kind
        (b'{"metadata": {"name": "x"}}', "application/x-whatever", 415),
        (b'{"metadata": {"name": "Not_Valid"}}', "application/json", 422),
        (b"a: &x [1, 2]\nb: [*x, *x]\n", "application/yaml", 400),  # aliases: the "billion laughs" shape
        (b'{"metadata": ["not", "an", "object"]}', "application/json", 400),  # type confusion
    ],
)
async def test_bad_request_bodies_get_clean_status_errors(
    http: aiohttp.ClientSession, body: bytes, ctype: str, code: int
) -> None:
    async with http.post(CM, data=body, headers={"Content-Type": ctype}) as resp:
        assert resp.status == code
        status = await _status(resp)
    if code == 422:
        assert status["reason"] == "Invalid"
        assert status["details"]["causes"][0]["field"] == "metadata.name"


async def test_body_over_the_size_limit_is_413(http: aiohttp.ClientSession) -> None:
    huge = json.dumps({"metadata": {"name": "big"}, "data": {"k": "x" * (4 * 1024 * 1024)}}).encode()
    async with http.post(CM, data=io.BytesIO(huge), headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413
        await _status(resp)


async def test_unknown_resource_is_404_status(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/v1/namespaces/default/widgets") as resp:
        assert resp.status == 404
        await _status(resp)


async def test_create_in_missing_namespace_is_rejected(http: aiohttp.ClientSession) -> None:
    async with http.post("/api/v1/namespaces/nowhere/configmaps", json={"metadata": {"name": "a"}}) as resp:
        assert resp.status == 404
        await _status(resp)


async def test_list_pages_with_limit_and_continue(http: aiohttp.ClientSession) -> None:
    ns = "/api/v1/namespaces"
    async with http.post(ns, json={"metadata": {"name": "paging"}}) as resp:
        assert resp.status == 201
    for i in range(5):
        async with http.post(f"{ns}/paging/configmaps", json={"metadata": {"name": f"c{i}"}}) as resp:
            assert resp.status == 201
    names: list[str] = []
    token = ""
    for _ in range(5):
        params = {"limit": "2", **({"continue": token} if token else {})}
        async with http.get(f"{ns}/paging/configmaps", params=params) as resp:
            page = await resp.json()
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == [f"c{i}" for i in range(5)]


async def _read_events(resp: aiohttp.ClientResponse, n: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) < n:
        line = await asyncio.wait_for(resp.content.readline(), 5)
        assert line, "watch stream ended early"
        ev = json.loads(line)
        if ev["type"] != "BOOKMARK":
            events.append(ev)
    return events


async def test_watch_resumes_from_a_resource_version_with_selector_transitions(http: aiohttp.ClientSession) -> None:
    async with http.post(CM, json={"metadata": {"name": "w1", "labels": {"team": "a"}}}) as resp:
        rv = (await resp.json())["metadata"]["resourceVersion"]
    async with http.patch(
        f"{CM}/w1",
        data=json.dumps({"metadata": {"labels": {"team": "b"}}}),
        headers={"Content-Type": "application/merge-patch+json"},
    ) as resp:
        assert resp.status == 200
    async with http.delete(f"{CM}/w1") as resp:
        assert resp.status == 200
    params = {"watch": "true", "resourceVersion": rv, "labelSelector": "team=b"}
    async with http.get(CM, params=params) as resp:
        events = await _read_events(resp, 2)
    # relabelled into the selector → ADDED; then deleted → DELETED
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w1"), ("DELETED", "w1")]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(rv)


async def test_scale_subresource_reads_and_writes_replicas(http: aiohttp.ClientSession) -> None:
    deploy = {
        "metadata": {"name": "sc"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "sc"}},
            "template": {"metadata": {"labels": {"app": "sc"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        },
    }
    path = "/apis/apps/v1/namespaces/default/deployments"
    async with http.post(path, json=deploy) as resp:
        assert resp.status == 201, await resp.text()
    async with http.patch(
        f"{path}/sc/scale", data='{"spec":{"replicas":4}}', headers={"Content-Type": "application/merge-patch+json"}
    ) as resp:
        scale = await resp.json()
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 4
    assert scale["status"]["selector"] == "app=sc"
    async with http.get(f"{path}/sc") as resp:
        assert (await resp.json())["spec"]["replicas"] == 4


async def test_binding_sets_node_name_once(http: aiohttp.ClientSession) -> None:
    pods = "/api/v1/namespaces/default/pods"
    pod = {"metadata": {"name": "b1"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    async with http.post(pods, json=pod) as resp:
        assert resp.status == 201, await resp.text()
    binding = {"metadata": {"name": "b1"}, "target": {"kind": "Node", "name": "n1"}}
    async with http.post(f"{pods}/b1/binding", json=binding) as resp:
        assert resp.status == 201
    async with http.post(f"{pods}/b1/binding", json=binding) as resp:
        assert resp.status == 409
    async with http.get(pods, params={"fieldSelector": "spec.nodeName=n1"}) as resp:
        items = (await resp.json())["items"]
    assert [p["metadata"]["name"] for p in items] == ["b1"]
