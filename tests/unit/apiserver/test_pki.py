"""The cluster PKI: a CA kept across starts, serving certificates with the right SANs, client
certificates whose CN/O are the user and groups, and a self-contained admin kubeconfig."""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane import kubeconfig
from controlplane.pki import issue_client_cert, load_or_create, serving_hosts, sign_client_public_key


def test_ca_is_made_once_and_reloaded(tmp_path: Path) -> None:
    first = load_or_create(tmp_path / "pki")
    second = load_or_create(tmp_path / "pki")
    assert first.ca.cert == second.ca.cert
    assert oct((tmp_path / "pki" / "ca.key").stat().st_mode & 0o777) == "0o600"


def test_serving_cert_covers_loopback_service_ip_and_cluster_names(tmp_path: Path) -> None:
    pki = load_or_create(tmp_path)
    pki.write_serving(serving_hosts("192.0.2.10", "10.96.0.1"))
    cert = x509.load_pem_x509_certificate(pki.serving_cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert {"127.0.0.1", "10.96.0.1", "192.0.2.10"} <= ips
    assert "kubernetes.default.svc" in san.get_values_for_type(x509.DNSName)
    ekus = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in ekus
    assert cert.issuer == pki.ca.cert.subject
    assert ipaddress.ip_address("10.96.0.1") in san.get_values_for_type(x509.IPAddress)


def test_client_cert_names_user_and_groups_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    pki = load_or_create(tmp_path)
    pair = issue_client_cert(pki.ca, "system:node:n1", ["system:nodes"])
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    cert.verify_directly_issued_by(pki.ca.cert)


def test_signing_a_requesters_own_key_keeps_the_private_key_with_them(tmp_path: Path) -> None:
    pki = load_or_create(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import serialization

    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    cert = x509.load_pem_x509_certificate(sign_client_public_key(pki.ca, public, "system:node:n2", ["system:nodes"]))
    assert cert.public_key() == key.public_key()


def test_admin_kubeconfig_is_self_contained(tmp_path: Path) -> None:
    pki = load_or_create(tmp_path)
    admin = pki.admin()
    path = tmp_path / "admin.kubeconfig"
    kubeconfig.write(
        path,
        kubeconfig.build("https://127.0.0.1:6443", pki.ca.cert_pem, cert_pem=admin.cert_pem, key_pem=admin.key_pem),
    )
    cfg = yaml.safe_load(path.read_text())
    user = cfg["users"][0]["user"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]) == pki.ca.cert_pem
    assert pki.admin() == admin  # kept across calls: old kubeconfigs stay valid
