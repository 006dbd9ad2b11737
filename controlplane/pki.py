"""The cluster's certificates: a CA made on first start, the API server's serving certificate and
client certificates (admin, nodes joining with a token). EC P-256 keys: small and fast to make.

Files under `<data-dir>/pki/`: ca.crt/ca.key (kept across restarts — every kubeconfig trusts it),
apiserver.crt/key (re-issued at every start so its SANs follow the listen address), admin.crt/key."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CA_DAYS = 3650
_LEAF_DAYS = 365


@dataclass(frozen=True)
class CertKey:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str, orgs: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)  # tolerate clock skew


def new_ca(common_name: str = "tinykube-ca") -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CA(cert, key)


def _leaf(
    ca: CA,
    cn: str,
    *,
    orgs: Iterable[str] = (),
    server: bool,
    dns: Iterable[str] = (),
    ips: Iterable[str] = (),
    public_key_pem: bytes | None = None,
) -> CertKey:
    key = ec.generate_private_key(ec.SECP256R1())
    if public_key_pem is not None:
        public = serialization.load_pem_public_key(public_key_pem)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ValueError("only EC public keys are accepted")
    else:
        public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + datetime.timedelta(days=_LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key) if public_key_pem is None else b"")


def issue_client_cert(ca: CA, common_name: str, groups: Iterable[str] = ()) -> CertKey:
    """A client certificate: the API server authenticates it as user CN in groups O."""
    return _leaf(ca, common_name, orgs=groups, server=False)


def sign_client_public_key(ca: CA, public_key_pem: bytes, common_name: str, groups: Iterable[str] = ()) -> bytes:
    """Certify a key the requester made itself (the private key never leaves the node); returns the PEM."""
    return _leaf(ca, common_name, orgs=groups, server=False, public_key_pem=public_key_pem).cert_pem


def ca_hash(cert_pem: bytes) -> str:
    """`sha256:<hex>` of the certificate's SubjectPublicKeyInfo — kubeadm's `--discovery-token-ca-cert-hash`
    form, so a node can pin the CA before it trusts anything the server sends."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return "sha256:" + digest.finalize().hex()


def new_key_pair() -> tuple[bytes, bytes]:
    """(private key PEM, public key PEM) for a client that has its public key certified."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _key_pem(key), public


def issue_serving_cert(ca: CA, *, hosts: Iterable[str]) -> CertKey:
    dns, ips = [], []
    for host in dict.fromkeys(hosts):
        try:
            ipaddress.ip_address(host)
            ips.append(host)
        except ValueError:
            dns.append(host)
    return _leaf(ca, "kube-apiserver", server=True, dns=dns, ips=ips)


def serving_hosts(listen_host: str, service_ip: str) -> list[str]:
    hosts = ["127.0.0.1", "::1", "localhost", service_ip, "kubernetes", "kubernetes.default"]
    hosts += ["kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
    if listen_host not in ("", "0.0.0.0", "::"):
        hosts.append(listen_host)
    return hosts


def write_private(path: Path, data: bytes) -> None:
    _write(path, data, private=True)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class ClusterPKI:
    dir: Path
    ca: CA

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def serving_cert_file(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key_file(self) -> Path:
        return self.dir / "apiserver.key"

    def write_serving(self, hosts: Iterable[str]) -> None:
        pair = issue_serving_cert(self.ca, hosts=hosts)
        _write(self.serving_key_file, pair.key_pem, private=True)
        _write(self.serving_cert_file, pair.cert_pem, private=False)

    def client_pair(self, file_stem: str, common_name: str, groups: Iterable[str]) -> CertKey:
        """A client pair made once and kept (so kubeconfigs written earlier keep working)."""
        crt, key = self.dir / f"{file_stem}.crt", self.dir / f"{file_stem}.key"
        if crt.exists() and key.exists():
            return CertKey(crt.read_bytes(), key.read_bytes())
        pair = issue_client_cert(self.ca, common_name, groups)
        _write(key, pair.key_pem, private=True)
        _write(crt, pair.cert_pem, private=False)
        return pair

    def admin(self) -> CertKey:
        return self.client_pair("admin", "admin", ["system:masters"])

    def kubelet_client(self) -> CertKey:
        """What the API server presents to nodes when it proxies logs and exec."""
        return self.client_pair("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ["system:masters"])


def load_or_create(pki_dir: str | Path) -> ClusterPKI:
    d = Path(pki_dir)
    d.mkdir(parents=True, exist_ok=True)
    crt, key = d / "ca.crt", d / "ca.key"
    if crt.exists() and key.exists():
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key}: not an EC key")
        return ClusterPKI(d, CA(cert, loaded))
    ca = new_ca()
    _write(key, _key_pem(ca.key), private=True)
    _write(crt, ca.cert_pem, private=False)
    return ClusterPKI(d, ca)
