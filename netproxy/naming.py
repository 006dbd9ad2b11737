"""Chain names derived from what a chain serves, so every sync (and every restart) names the same
service the same way without keeping a table.

iptables limits chain names to 28 characters (XT_EXTENSION_MAXNAMELEN is 29 bytes including the NUL;
`iptables -N` refuses longer names). A prefix like `KUBE-SVC-` (9) plus 16 hex characters of a SHA-256
digest (64 bits: the chance of any collision among 110k chains is ~3e-10) is 25, leaving room for the
longest prefix we use (`KUBE-SEP-`/`KUBE-EXT-`/`KUBE-SVL-`, all 9). nftables allows 255 characters, so its
names can stay readable; they carry the same hash to keep them unique and bounded.
"""

from __future__ import annotations

import functools
import hashlib

from netproxy.model import Endpoint, ServicePortName

IPTABLES_MAX_CHAIN = 28
HASH_CHARS = 16


def _hash(text: str) -> str:
    # Hex, not base32: hexdigest runs in C, base64.b32encode in Python (3x the cost of a 10k render).
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS].upper()


@functools.lru_cache(maxsize=1 << 18)
def _chain(prefix: str, text: str) -> str:
    """Cached: a full sync at 10k services names 110k chains, and most names repeat sync after sync."""
    name = f"{prefix}{_hash(text)}"
    assert len(name) <= IPTABLES_MAX_CHAIN, name
    return name


def service_chain(spn: ServicePortName) -> str:
    """KUBE-SVC-*: every usable endpoint of the port."""
    return _chain("KUBE-SVC-", str(spn))


def local_chain(spn: ServicePortName) -> str:
    """KUBE-SVL-*: only this node's endpoints (a Local traffic policy)."""
    return _chain("KUBE-SVL-", str(spn))


def external_chain(spn: ServicePortName) -> str:
    """KUBE-EXT-*: traffic that came through a NodePort, externalIP or load-balancer IP."""
    return _chain("KUBE-EXT-", str(spn))


def endpoint_chain(spn: ServicePortName, ep: Endpoint) -> str:
    """KUBE-SEP-*: DNAT to one endpoint (its name is also the `recent` list for ClientIP affinity)."""
    return _chain("KUBE-SEP-", f"{spn}:{ep.ip}:{ep.port}")


@functools.lru_cache(maxsize=1 << 16)
def nft_service_chain(spn: ServicePortName, suffix: str = "") -> str:
    """nft chain of one Service port, e.g. `svc-DEFAULT-WEB-HTTP-TCP-XXXXXXXX` (readable + unique)."""
    readable = f"{spn.namespace}-{spn.name}-{spn.port}-{spn.protocol}".replace(".", "-")[:60]
    return f"svc{suffix}-{readable}-{_hash(str(spn))}"


def nft_endpoint_chain(spn: ServicePortName, ep: Endpoint) -> str:
    """Per-endpoint nft chain: only for ClientIP affinity, which needs a place to record the choice."""
    return f"ep-{ep.ip.replace('.', '-')}-{ep.port}-{_hash(f'{spn}:{ep.ip}:{ep.port}')}"


def nft_affinity_set(spn: ServicePortName, ep: Endpoint) -> str:
    return f"aff-{_hash(f'{spn}:{ep.ip}:{ep.port}')}"


@functools.lru_cache(maxsize=1 << 16)
def nft_endpoint_key(chain: str) -> tuple[int, int]:
    """A 64-bit hash of an nft Service port chain's name, as two 32-bit halves: with an endpoint's index
    it keys the chain's endpoints in the one map all chains share (`numgen` values are 32-bit)."""
    value = int(hashlib.sha256(chain.encode()).hexdigest()[:16], 16)
    return value >> 32, value & 0xFFFFFFFF
