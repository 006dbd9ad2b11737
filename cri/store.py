"""Records of sandboxes and containers on disk, one directory each, so the daemon can be killed
(-9) and restarted without losing track of what runs: `<root>/sandboxes/<id>/sandbox.json`,
`<root>/containers/<id>/container.json` (+ run.json / exit.json the monitor writes)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from cri.atomic import read_json, write_json


@dataclass
class SandboxRecord:
    id: str
    name: str
    namespace: str
    uid: str
    attempt: int
    created_at: int
    config: str  # base64 of the serialized PodSandboxConfig (labels, annotations, metadata, …)
    state: str = "READY"
    pid: int = 0
    start_time: int = 0
    ips: list[str] = field(default_factory=list)
    network_attached: bool = False
    pod_cgroup: str = ""
    owns_pod_cgroup: bool = False
    pause_cgroup: str = ""
    modes: dict[str, str] = field(default_factory=dict)  # net/pid/ipc → POD|CONTAINER|NODE|TARGET
    runtime_handler: str = ""


@dataclass
class ContainerRecord:
    id: str
    sandbox_id: str
    name: str
    attempt: int
    created_at: int
    config: str  # base64 of the serialized ContainerConfig
    image: str
    image_ref: str
    image_id: str
    log_path: str
    cgroup: str
    launch: dict[str, Any]  # the ContainerLaunch wire form StartContainer hands the launcher
    resources: dict[str, Any] = field(default_factory=dict)
    stop_signal: str = ""  # the image's StopSignal (e.g. SIGQUIT); empty means SIGTERM


def encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decode(text: str) -> bytes:
    return base64.b64decode(text)


class Store:
    """File-backed records with an in-memory cache, rebuilt from disk at start."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.sandbox_root = os.path.join(root, "sandboxes")
        self.container_root = os.path.join(root, "containers")
        os.makedirs(self.sandbox_root, exist_ok=True)
        os.makedirs(self.container_root, exist_ok=True)
        self.lock = threading.RLock()  # guards the two dicts and the record files
        self.sandboxes: dict[str, SandboxRecord] = {}
        self.containers: dict[str, ContainerRecord] = {}
        self._load()

    def _load(self) -> None:
        for ident, doc in self._records(self.sandbox_root, "sandbox.json"):
            self.sandboxes[ident] = SandboxRecord(**doc)
        for ident, doc in self._records(self.container_root, "container.json"):
            self.containers[ident] = ContainerRecord(**doc)

    @staticmethod
    def _records(rec_dir: str, fname: str) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for ident in os.listdir(rec_dir):
            try:
                with open(os.path.join(rec_dir, ident, fname)) as f:
                    found.append((ident, json.load(f)))
            except (OSError, ValueError):
                # A directory without a readable record is a creation that never committed.
                shutil.rmtree(os.path.join(rec_dir, ident), ignore_errors=True)
        return found

    def sandbox_dir(self, ident: str) -> str:
        return os.path.join(self.sandbox_root, ident)

    def container_dir(self, ident: str) -> str:
        return os.path.join(self.container_root, ident)

    def save_sandbox(self, rec: SandboxRecord) -> None:
        with self.lock:
            write_json(os.path.join(self.sandbox_dir(rec.id), "sandbox.json"), asdict(rec))
            self.sandboxes[rec.id] = rec

    def save_container(self, rec: ContainerRecord) -> None:
        with self.lock:
            write_json(os.path.join(self.container_dir(rec.id), "container.json"), asdict(rec))
            self.containers[rec.id] = rec

    def drop_sandbox(self, ident: str) -> None:
        with self.lock:
            self.sandboxes.pop(ident, None)
            shutil.rmtree(self.sandbox_dir(ident), ignore_errors=True)

    def drop_container(self, ident: str) -> None:
        with self.lock:
            self.containers.pop(ident, None)
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(self.container_dir(ident))

    @staticmethod
    def read_json(path: str) -> dict[str, Any] | None:
        return read_json(path)


def sandbox_config(rec: SandboxRecord) -> Any:
    """The PodSandboxConfig the sandbox was created with (protobuf, imported lazily: stubs are generated)."""
    from cri.api import api_pb2

    return api_pb2.PodSandboxConfig.FromString(decode(rec.config))


def container_config(rec: ContainerRecord) -> Any:
    from cri.api import api_pb2

    return api_pb2.ContainerConfig.FromString(decode(rec.config))
