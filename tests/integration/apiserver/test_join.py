"""Node join against a real server: the CA comes from the public cluster-info ConfigMap, trusted only
through the token's signature (and an optional CA hash pin); the node certificate the token buys
authenticates as `system:node:<name>` in `system:nodes`. Plus who may read `/metrics`."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from controlplane.join import JoinError, join
from controlplane.join import main as join_main
from controlplane.pki import ca_hash, issue_client_cert, load_or_create
from controlplane.testing.server import ServerHandle, start_server

CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with start_server(tmp_path_factory.mktemp("join"), controllers=False) as srv:
        yield srv


def _token(server: ServerHandle) -> str:
    return (server.data_dir / "node-token").read_text().strip()


def _ctx_with_cert(server: ServerHandle, tmp: Path, cert_pem: bytes | None, key_pem: bytes | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=server.ca_file)
    if cert_pem is not None and key_pem is not None:
        (tmp / "c.crt").write_bytes(cert_pem)
        (tmp / "c.key").write_bytes(key_pem)
        ctx.load_cert_chain(tmp / "c.crt", tmp / "c.key")
    return ctx


def _status(
    server: ServerHandle, ctx: ssl.SSLContext, path: str, method: str = "GET", body: bytes | None = None
) -> int:
    req = urllib.request.Request(server.url + path, method=method, data=body)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        err.close()
        return err.code


def _kubeconfig_credentials(path: Path) -> tuple[bytes, bytes]:
    import base64

    user = yaml.safe_load(path.read_text())["users"][0]["user"]
    return base64.b64decode(user["client-certificate-data"]), base64.b64decode(user["client-key-data"])


def test_join_writes_a_kubeconfig_whose_certificate_is_the_node_identity(server: ServerHandle, tmp_path: Path) -> None:
    out = tmp_path / "node.kubeconfig"
    join(server.url, _token(server), "worker-1", str(out))
    assert out.stat().st_mode & 0o777 == 0o600
    cfg = yaml.safe_load(out.read_text())
    assert cfg["clusters"][0]["cluster"]["server"] == server.url
    cert_pem, key_pem = _kubeconfig_credentials(out)
    subject = x509.load_pem_x509_certificate(cert_pem).subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:worker-1"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    ctx = _ctx_with_cert(server, tmp_path, cert_pem, key_pem)
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"}}
    assert _status(server, ctx, "/api/v1/nodes", "POST", json.dumps(node).encode()) == 201
    assert _status(server, ctx, "/apis/rbac.authorization.k8s.io/v1/clusterroles") == 403


def test_join_with_the_right_ca_hash_pin_succeeds(server: ServerHandle, tmp_path: Path) -> None:
    pin = ca_hash(Path(server.ca_file).read_bytes())
    join(server.url, _token(server), "worker-2", str(tmp_path / "k"), ca_hash=pin)
    assert (tmp_path / "k").exists()


def test_join_refuses_a_ca_that_does_not_match_the_pin(server: ServerHandle, tmp_path: Path) -> None:
    with pytest.raises(JoinError, match="CA hash"):
        join(server.url, _token(server), "worker-3", str(tmp_path / "k"), ca_hash="sha256:" + "0" * 64)
    assert not (tmp_path / "k").exists()


def test_join_with_a_wrong_token_secret_is_refused_before_trusting_the_ca(server: ServerHandle, tmp_path: Path) -> None:
    token_id, _, secret = _token(server).partition(".")
    wrong = f"{token_id}.{'a' * 16 if secret != 'a' * 16 else 'b' * 16}"
    with pytest.raises(JoinError, match="not signed"):
        join(server.url, wrong, "worker-4", str(tmp_path / "k"))
    assert not (tmp_path / "k").exists()


def test_anonymous_may_read_cluster_info_only(server: ServerHandle, tmp_path: Path) -> None:
    anonymous = _ctx_with_cert(server, tmp_path, None, None)
    assert _status(server, anonymous, CLUSTER_INFO) == 200
    assert _status(server, anonymous, CLUSTER_INFO, "PUT", b"{}") == 403
    assert _status(server, anonymous, "/api/v1/namespaces/kube-public/configmaps") == 401
    assert _status(server, anonymous, "/tinykube/node-certificate", "POST", b"{}") == 401
    assert _status(server, anonymous, "/healthz") == 200


def test_metrics_are_for_masters_and_the_monitoring_group(server: ServerHandle, tmp_path: Path) -> None:
    ca = load_or_create(server.data_dir / "pki").ca
    monitor = issue_client_cert(ca, "prometheus", ["system:monitoring"])
    nobody = issue_client_cert(ca, "someone", [])
    assert _status(server, server.admin_ssl_context(), "/metrics") == 200
    assert _status(server, _ctx_with_cert(server, tmp_path, monitor.cert_pem, monitor.key_pem), "/metrics") == 200
    assert _status(server, _ctx_with_cert(server, tmp_path, monitor.cert_pem, monitor.key_pem), "/api/v1/pods") == 403
    assert _status(server, _ctx_with_cert(server, tmp_path, nobody.cert_pem, nobody.key_pem), "/metrics") == 403


def test_join_command_line_succeeds_and_reports_failures_in_one_line(
    server: ServerHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.kubeconfig"
    argv = ["--server", server.url, "--node-name", "worker-5", "--kubeconfig-out", str(out)]
    assert join_main([*argv, "--token", _token(server)]) == 0
    assert out.exists()
    assert join_main([*argv, "--token", "not-a-token"]) == 1
    assert "tinykube node join: the token must look like" in capsys.readouterr().err
