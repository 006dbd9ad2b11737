from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestServer

from controlplane.client import (
    AlreadyExists,
    ConfigError,
    Gone,
    Informer,
    KubeClient,
    NotFound,
    load_kubeconfig,
)
from controlplane.client.errors import Conflict, ConnectionFailed, ServerError, error_from_status
from controlplane.resources import PODS
from tests.unit.client.fake_server import FakeApi, pod


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApi, KubeClient]]:
    fake = FakeApi()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    client = KubeClient(str(server.make_url("")), token="s3cret")
    try:
        yield fake, client
    finally:
        await client.close()
        await server.close()


def test_status_maps_to_typed_errors() -> None:
    def st(code: int, reason: str) -> dict[str, object]:
        return {"kind": "Status", "code": code, "reason": reason, "message": "m"}

    assert isinstance(error_from_status(409, st(409, "AlreadyExists")), AlreadyExists)
    assert isinstance(error_from_status(409, st(409, "Conflict")), Conflict)
    assert isinstance(error_from_status(200, st(410, "Expired")), Gone)
    assert isinstance(error_from_status(503, "upstream down"), ServerError)
    err = error_from_status(404, st(404, "NotFound"))
    assert isinstance(err, NotFound)
    assert (err.code, err.reason, err.message) == (404, "NotFound", "m")


def test_kubeconfig_resolves_current_context_with_data_and_relative_files(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"CA")
    doc = {
        "current-context": "b",
        "clusters": [
            {"name": "c1", "cluster": {"server": "https://127.0.0.1:6443/", "certificate-authority": "ca.pem"}}
        ],
        "users": [
            {
                "name": "u1",
                "user": {
                    "client-certificate-data": base64.b64encode(b"CERT").decode(),
                    "client-key-data": base64.b64encode(b"KEY").decode(),
                    "token": "t",
                },
            }
        ],
        "contexts": [
            {"name": "a", "context": {"cluster": "nope", "user": "u1"}},
            {"name": "b", "context": {"cluster": "c1", "user": "u1", "namespace": "kube-system"}},
        ],
    }
    path = tmp_path / "kc.yaml"
    path.write_text(yaml.safe_dump(doc))
    creds = load_kubeconfig(path)
    assert creds.server == "https://127.0.0.1:6443"
    assert (creds.ca_pem, creds.client_cert_pem, creds.client_key_pem) == (b"CA", b"CERT", b"KEY")
    assert creds.token == "t"
    assert creds.namespace == "kube-system"
    with pytest.raises(ConfigError):
        load_kubeconfig(path, context="a")


async def test_crud_roundtrip_sends_token_and_raises_typed_errors(api: tuple[FakeApi, KubeClient]) -> None:
    fake, client = api
    created = await client.create(PODS, pod("a", app="x"), "default")
    assert created["metadata"]["resourceVersion"]
    assert fake.requests[-1].headers["Authorization"] == "Bearer s3cret"
    with pytest.raises(AlreadyExists):
        await client.create(PODS, pod("a"), "default")
    got = await client.get(PODS, "a", "default")
    assert got["metadata"]["labels"] == {"app": "x"}
    patched = await client.patch(PODS, "a", {"metadata": {"labels": {"b": "y"}}}, "default")
    assert patched["metadata"]["labels"] == {"app": "x", "b": "y"}
    assert fake.requests[-1].headers["Content-Type"] == "application/merge-patch+json"
    listing = await client.list(PODS, "default", label_selector="app=x")
    assert fake.requests[-1].query["labelSelector"] == "app=x"
    assert [p["metadata"]["name"] for p in listing["items"]] == ["a"]
    await client.delete(PODS, "a", "default", propagation_policy="Foreground")
    with pytest.raises(NotFound):
        await client.get(PODS, "a", "default")


async def test_connection_refused_is_connection_failed() -> None:
    async with KubeClient("http://127.0.0.1:1") as client:
        with pytest.raises(ConnectionFailed):
            await client.get(PODS, "a", "default")


async def test_watch_yields_events_split_across_chunks(api: tuple[FakeApi, KubeClient]) -> None:
    _fake, client = api
    await client.create(PODS, pod("a"), "default")
    seen: list[tuple[str, str]] = []
    async with client.watch(PODS, "default", resource_version="1", timeout_seconds=5) as stream:
        async for ev in stream:
            seen.append((ev.type, ev.object["metadata"]["name"]))
            if len(seen) == 1:
                await client.delete(PODS, "a", "default")
            if len(seen) == 2:
                break
    assert seen == [("ADDED", "a"), ("DELETED", "a")]


async def test_watch_error_event_raises_gone(api: tuple[FakeApi, KubeClient]) -> None:
    fake, client = api
    fake.oldest_watchable = 100
    with pytest.raises(Gone):
        async for _ in client.watch(PODS, "default", resource_version="5"):
            pass


async def test_informer_syncs_tracks_changes_and_relists_after_gone(api: tuple[FakeApi, KubeClient]) -> None:
    fake, client = api
    await client.create(PODS, pod("a"), "default")
    await client.create(PODS, pod("b"), "default")
    events: list[tuple[str, str]] = []
    inf = Informer(client, PODS, "default", watch_timeout=1, min_backoff=0.01)
    inf.add_handler(
        on_add=lambda o: events.append(("add", o["metadata"]["name"])),
        on_update=lambda old, new: events.append(("update", new["metadata"]["name"])),
        on_delete=lambda o: events.append(("delete", o["metadata"]["name"])),
    )
    await inf.start()
    await inf.wait_for_sync(5)
    assert inf.has_synced
    assert sorted(inf.keys()) == ["default/a", "default/b"]
    await client.create(PODS, pod("c"), "default")
    await client.patch(PODS, "a", {"metadata": {"labels": {"z": "1"}}}, "default")

    async def until(cond: object) -> None:
        for _ in range(200):
            if callable(cond) and cond():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out; events={events}")

    await until(lambda: ("update", "a") in events and inf.get("default/c") is not None)
    assert (inf.get("default/a") or {})["metadata"]["labels"] == {"z": "1"}
    # Delete b behind the informer's back and expire its resourceVersion: the relist must report it.
    relists = inf.relists
    fake.oldest_watchable = fake.rv + 10
    fake.objects.pop("default/b")
    await until(lambda: inf.relists > relists)
    fake.oldest_watchable = 0
    await until(lambda: ("delete", "b") in events)
    assert inf.get("default/b") is None
    await inf.stop()
