"""The one place a store implementation is chosen, from the `--storage` name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from controlplane.storage.interface import Backend, Unsupported


@dataclass(frozen=True)
class StorageConfig:
    kind: str  # sqlite | etcd | memory
    data_dir: Path
    etcd_endpoints: Sequence[str] = ()


def _sqlite(cfg: StorageConfig) -> Backend:
    from controlplane.storage.sqlite import SQLiteBackend

    return SQLiteBackend(cfg.data_dir / "state.db")


def _etcd(cfg: StorageConfig) -> Backend:
    if not cfg.etcd_endpoints:
        raise Unsupported("etcd storage needs --etcd-endpoints")
    from controlplane.storage.etcd import EtcdBackend  # imported only when chosen: it pulls in grpc

    return EtcdBackend(list(cfg.etcd_endpoints))


def _memory(cfg: StorageConfig) -> Backend:
    del cfg
    from controlplane.storage.memory import MemoryBackend

    return MemoryBackend()


BACKENDS: dict[str, Callable[[StorageConfig], Backend]] = {"sqlite": _sqlite, "etcd": _etcd, "memory": _memory}


def open_backend(cfg: StorageConfig) -> Backend:
    try:
        make = BACKENDS[cfg.kind]
    except KeyError as err:
        raise Unsupported(f"storage {cfg.kind!r} (choose from {', '.join(BACKENDS)})") from err
    return make(cfg)
