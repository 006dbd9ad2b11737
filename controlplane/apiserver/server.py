"""Assembles and runs the API server: certificates and the admin kubeconfig, the store, the cache,
the registry with its policy, the cluster's bootstrap objects and the HTTPS listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from controlplane import auth, kubeconfig
from controlplane.apiserver.bootstrap import ensure_cluster_info, ensure_cluster_objects, ensure_node_token
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.errors import ApiError
from controlplane.apiserver.handlers import ApiHandlers
from controlplane.apiserver.keys import collection_prefix
from controlplane.apiserver.nodecerts import NodeCertificates
from controlplane.apiserver.nodeproxy import NodeProxy
from controlplane.apiserver.policy import CacheReader, ClusterPolicy
from controlplane.apiserver.registry import DeleteOptions, Registry, age_seconds
from controlplane.apiserver.security import Security
from controlplane.apiserver.tables import TableMaker
from controlplane.auth import TokenSigner
from controlplane.pki import ClusterPKI, ca_hash, load_or_create, serving_hosts, write_private
from controlplane.resources import EVENTS, EVENTS_V1
from controlplane.storage import Backend, StorageError
from controlplane.storage.factory import StorageConfig, open_backend

if TYPE_CHECKING:
    from controlplane.controllers.config import ControllerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    kubeconfig_out: Path = Path("/etc/tinykube/admin.kubeconfig")
    storage: str = "sqlite"
    etcd_endpoints: Sequence[str] = ()
    service_cidr: str = "10.96.0.0/16"
    advertise_address: str | None = None
    extra_sans: Sequence[str] = field(default_factory=tuple)
    compaction_interval: float = 300.0
    event_ttl: float = 3600.0
    access_log: bool = False

    @property
    def endpoint_address(self) -> str:
        """Where pods reach this server (the `kubernetes` Service's endpoint): the advertise address,
        else the listen address, else (wildcard listen) this host's primary address."""
        if self.advertise_address:
            return self.advertise_address
        if self.host not in ("", "0.0.0.0", "::"):
            return self.host
        return primary_address()

    @property
    def client_host(self) -> str:
        """How a local client reaches the listener (a wildcard listen address is not dialable)."""
        return self.advertise_address or ("127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host)

    @property
    def url(self) -> str:
        host = self.client_host
        return f"https://[{host}]:{self.port}" if ":" in host else f"https://{host}:{self.port}"


def primary_address() -> str:
    """The source address of this host's default route (a UDP connect sends nothing); loopback when
    there is no route, as in a test's private network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route lookup matters
            address: str = s.getsockname()[0]
        except OSError:
            return "127.0.0.1"
    return address


def server_ssl_context(pki: ClusterPKI) -> ssl.SSLContext:
    """TLS 1.2+, HTTP/1.1 only (no h2 in aiohttp); client certificates optional but verified against
    the cluster CA when sent — unauthenticated requests are refused later, per path."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.serving_cert_file, pki.serving_key_file)
    ctx.load_verify_locations(cafile=str(pki.ca_file))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@dataclass
class RunningServer:
    """What `start()` built; `close()` undoes it in reverse."""

    config: ServerConfig
    pki: ClusterPKI
    registry: Registry
    handlers: ApiHandlers
    runner: web.AppRunner
    background: list[asyncio.Task[None]]

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.handlers.ready = False
        self.handlers.stop_watches()
        await self.runner.cleanup()
        await self.registry.cache.stop()
        await self.registry.backend.close()


def _signing_key(pki: ClusterPKI) -> bytes:
    """The ServiceAccount token key, made once: tokens stay valid across restarts."""
    path = pki.dir / "sa.key"
    if not path.exists():
        write_private(path, TokenSigner.new_key())
    return path.read_bytes()


async def start(cfg: ServerConfig, *, controllers: bool = True) -> RunningServer:
    pki = load_or_create(cfg.data_dir / "pki")
    backend = open_backend(StorageConfig(cfg.storage, cfg.data_dir, tuple(cfg.etcd_endpoints)))
    await backend.start()
    cache = WatchCache(backend)
    await cache.start()
    policy = ClusterPolicy(CacheReader(cache), require_service_account=controllers)
    registry = Registry(backend, cache, service_cidr=cfg.service_cidr, policy=policy)
    registry.rebuild_allocations()
    security = Security(cache, _signing_key(pki))
    hosts = [*serving_hosts(cfg.host, registry.service_ips.kubernetes_ip), cfg.client_host, cfg.endpoint_address]
    hosts += cfg.extra_sans
    pki.write_serving(hosts)
    await ensure_cluster_objects(registry, address=cfg.endpoint_address, port=cfg.port, extra=auth.default_objects())
    token = await ensure_node_token(registry, cfg.data_dir / "node-token")
    await ensure_cluster_info(registry, server_url=cfg.url, ca_pem=pki.ca.cert_pem, token=token)

    handlers = ApiHandlers(
        registry,
        server_address=f"{cfg.client_host}:{cfg.port}",
        tables=TableMaker(),
        security=security,
        connect=NodeProxy(registry, pki.kubelet_client()),
        issue_token=security.signer.issue,
        node_certificates=NodeCertificates(pki.ca),
    )
    access = logging.getLogger("tinykube.access") if cfg.access_log else None
    runner = web.AppRunner(handlers.app(), access_log=access, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host or None, cfg.port, ssl_context=server_ssl_context(pki), backlog=1024)
    await site.start()

    admin = pki.admin()
    kubeconfig.write(
        cfg.kubeconfig_out, kubeconfig.build(cfg.url, pki.ca.cert_pem, cert_pem=admin.cert_pem, key_pem=admin.key_pem)
    )
    handlers.ready = True
    background = [
        asyncio.create_task(compact_periodically(backend, cfg.compaction_interval), name="compactor"),
        asyncio.create_task(_keep_cluster_objects(registry, cfg), name="bootstrap-objects"),
        asyncio.create_task(_expire_events(registry, cfg.event_ttl), name="event-ttl"),
    ]
    return RunningServer(cfg, pki, registry, handlers, runner, background)


async def _expire_events(registry: Registry, ttl: float) -> None:
    """Events live for `ttl` seconds after their creation (kube-apiserver's --event-ttl, 1 h by default)."""
    while True:
        await asyncio.sleep(min(ttl, 60.0))
        for res in (EVENTS, EVENTS_V1):
            for entry in registry.cache.list(collection_prefix(res)):
                meta = entry.obj["metadata"]
                if age_seconds(meta.get("creationTimestamp")) < ttl:
                    continue
                with contextlib.suppress(ApiError, StorageError):
                    await registry.delete(res, meta.get("namespace"), meta["name"], DeleteOptions())


async def _keep_cluster_objects(registry: Registry, cfg: ServerConfig, interval: float = 10.0) -> None:
    """Recreate the system namespaces and the `kubernetes` Service if someone deletes them (as the
    kube-apiserver's bootstrap controller does), and keep its endpoints on this server."""
    while True:
        await asyncio.sleep(interval)
        try:
            await ensure_cluster_objects(registry, address=cfg.endpoint_address, port=cfg.port)
        except (ApiError, StorageError) as err:
            log.warning("reconciling the cluster's bootstrap objects: %s", err)


async def compact_periodically(backend: Backend, interval: float) -> None:
    """Like kube-apiserver: every interval, drop store history older than the revision seen one
    interval ago — so a watch or paged list may resume from anything newer than that."""
    previous = await backend.current_revision()
    while True:
        await asyncio.sleep(interval)
        try:
            if previous:
                await backend.compact(previous)
            previous = await backend.current_revision()
        except StorageError as err:
            log.warning("compaction failed: %s", err)


async def serve(
    cfg: ServerConfig,
    *,
    stop: asyncio.Event,
    controllers: bool,
    controller_config: ControllerConfig | None = None,
    leader_elect: bool = True,
) -> None:
    """Run until `stop` is set; the controller manager runs alongside when asked for and present."""
    server = await start(cfg, controllers=controllers)
    print(f"tinykube API server listening on {cfg.url}; admin kubeconfig: {cfg.kubeconfig_out}", flush=True)
    print(f"node join token: {cfg.data_dir / 'node-token'}; CA hash: {ca_hash(server.pki.ca.cert_pem)}", flush=True)
    manager_task: asyncio.Task[None] | None = None
    if controllers:
        manager_task = _start_manager(str(cfg.kubeconfig_out), stop, controller_config, leader_elect)
    try:
        await stop.wait()
    finally:
        if manager_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(manager_task, 5)
        await server.close()


def _start_manager(
    kubeconfig_path: str, stop: asyncio.Event, config: ControllerConfig | None, leader_elect: bool
) -> asyncio.Task[None] | None:
    try:
        from controlplane import manager
    except ImportError as err:
        log.warning("controllers not started: %s", err)
        return None

    async def run() -> None:
        try:
            await manager.run(kubeconfig_path, stop=stop, config=config, leader_elect=leader_elect)
        except Exception:
            log.exception("controller manager failed")

    return asyncio.create_task(run(), name="controller-manager")
