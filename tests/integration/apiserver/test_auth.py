"""Authentication and RBAC at the edge: TokenRequest tokens authenticate as their ServiceAccount,
RBAC decides (403 until a binding allows), a bad token is 401."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from controlplane.testing.server import ServerHandle, start_server
from tests.integration.apiserver.helpers import admin_session


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with start_server(tmp_path_factory.mktemp("auth"), controllers=False) as srv:
        yield srv


async def _get_as(server: ServerHandle, token: str, path: str) -> int:
    import ssl

    ctx = ssl.create_default_context(cafile=server.ca_file)
    async with (
        aiohttp.ClientSession(base_url=server.url, connector=aiohttp.TCPConnector(ssl=ctx)) as s,
        s.get(path, headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        status = resp.status
    await asyncio.sleep(0.1)
    return status


async def test_service_account_token_is_forbidden_until_a_role_binding_allows(server: ServerHandle) -> None:
    async with admin_session(server) as http:
        async with http.post("/api/v1/namespaces/default/serviceaccounts", json={"metadata": {"name": "bot"}}) as r:
            assert r.status == 201
        req = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}
        async with http.post("/api/v1/namespaces/default/serviceaccounts/bot/token", json=req) as r:
            assert r.status == 201
            token = (await r.json())["status"]["token"]
        assert await _get_as(server, token, "/api/v1/namespaces/default/pods") == 403
        binding = {
            "metadata": {"name": "bot-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}],
        }
        async with http.post("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json=binding) as r:
            assert r.status == 201, await r.text()
        assert await _get_as(server, token, "/api/v1/namespaces/default/pods") == 200
        assert await _get_as(server, token, "/api/v1/namespaces/kube-system/pods") == 403
        async with http.delete("/api/v1/namespaces/default/serviceaccounts/bot") as r:
            assert r.status == 200
        assert await _get_as(server, token, "/api/v1/namespaces/default/pods") == 401
    await asyncio.sleep(0.25)


async def test_garbage_bearer_token_is_401(server: ServerHandle) -> None:
    assert await _get_as(server, "not-a-token", "/api/v1/namespaces") == 401


async def test_node_join_token_from_first_start_authenticates_with_the_node_role(server: ServerHandle) -> None:
    token = (server.data_dir / "node-token").read_text().strip()
    assert await _get_as(server, token, "/api/v1/nodes") == 200
    assert await _get_as(server, token, "/apis/rbac.authorization.k8s.io/v1/clusterroles") == 403
    assert await _get_as(server, token[:-1] + ("a" if token[-1] != "a" else "b"), "/api/v1/nodes") == 401
