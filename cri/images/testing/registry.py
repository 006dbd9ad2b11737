"""Run Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 for tests: storage in a temp dir,
optional token auth, stopped (by pid) when the handle closes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

REGISTRY_BINARY = "/usr/bin/docker-registry"


@dataclass
class RegistryHandle:
    host: str  # "127.0.0.1:PORT", what image references use
    process: subprocess.Popen[bytes]
    log_path: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def start_registry(workdir: str, *, token_auth: dict[str, str] | None = None) -> Iterator[RegistryHandle]:
    """Start a registry; `token_auth` = {realm, service, issuer, rootcertbundle} turns on token auth."""
    os.makedirs(workdir, exist_ok=True)
    port = free_port()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": os.path.join(workdir, "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if token_auth:
        config["auth"] = {"token": token_auth}
    config_path = os.path.join(workdir, "config.yml")
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f)
    log_path = os.path.join(workdir, "registry.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([REGISTRY_BINARY, "serve", config_path], stdout=log, stderr=subprocess.STDOUT)
    handle = RegistryHandle(f"127.0.0.1:{port}", proc, log_path)
    try:
        _wait_ready(handle)
        yield handle
    finally:
        handle.stop()


def _wait_ready(handle: RegistryHandle, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {handle.process.returncode}:\n{handle.log()}")
        try:
            with urllib.request.urlopen(f"http://{handle.host}/v2/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # 401 with token auth on: it is serving
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"docker-registry not ready after {timeout}s:\n{handle.log()}")
