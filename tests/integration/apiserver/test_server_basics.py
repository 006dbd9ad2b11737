"""The server process: HTTPS with its own CA, the admin kubeconfig, discovery and CRUD over the wire."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from controlplane.testing.server import ServerHandle, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with start_server(tmp_path_factory.mktemp("apiserver"), controllers=False) as srv:
        yield srv


def test_admin_kubeconfig_embeds_ca_and_client_certificate(server: ServerHandle) -> None:
    cfg = yaml.safe_load(Path(server.kubeconfig).read_text())
    assert cfg["clusters"][0]["cluster"]["server"] == server.url
    assert cfg["clusters"][0]["cluster"]["certificate-authority-data"]
    assert cfg["users"][0]["user"]["client-certificate-data"]
    assert oct(Path(server.kubeconfig).stat().st_mode & 0o777) == "0o600"


def test_anonymous_request_to_api_is_refused_with_401(server: ServerHandle) -> None:
    ctx = ssl.create_default_context(cafile=server.ca_file)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{server.url}/api/v1/namespaces", context=ctx, timeout=5)
    err.value.close()
    assert err.value.code == 401


def test_health_is_public_and_serving_cert_verifies_against_ca(server: ServerHandle) -> None:
    ctx = ssl.create_default_context(cafile=server.ca_file)
    with urllib.request.urlopen(f"{server.url}/readyz", context=ctx, timeout=5) as resp:
        assert resp.read() == b"ok"


def test_events_expire_after_the_event_ttl(tmp_path: Path) -> None:
    import json
    import time

    with start_server(tmp_path, controllers=False, extra_args=["--event-ttl", "1"]) as srv:
        ctx = srv.admin_ssl_context()
        event = {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R"}
        req = urllib.request.Request(
            f"{srv.url}/api/v1/namespaces/default/events",
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            assert resp.status == 201
        deadline = time.monotonic() + 10
        remaining = 1
        while time.monotonic() < deadline and remaining:
            time.sleep(0.5)
            with urllib.request.urlopen(f"{srv.url}/api/v1/namespaces/default/events", context=ctx, timeout=5) as r:
                remaining = len(json.loads(r.read())["items"])
        assert remaining == 0
