"""Run `tinykube server` as a subprocess for tests (contract 2 in the team brief):

    with start_server(tmp_path, controllers=False) as srv:
        KubeClient.from_kubeconfig(srv.kubeconfig) ...

It listens on 127.0.0.1 at a free port, keeps its state under `tmp_path/controlplane`, writes the
admin kubeconfig to `tmp_path/admin.kubeconfig` and its log to `tmp_path/apiserver.log`, and is
ready (its `/readyz` answers 200) when `start_server` returns."""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import yaml

__all__ = ["ServerHandle", "free_port", "start_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerHandle:
    def __init__(
        self, tmp_path: Path, *, controllers: bool, storage_args: Sequence[str], extra_args: Sequence[str]
    ) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "controlplane"
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = str(tmp_path / "admin.kubeconfig")
        self.ca_file = str(self.data_dir / "pki" / "ca.crt")
        self.log_file = tmp_path / "apiserver.log"
        self._argv = [
            sys.executable,
            "-m",
            "tinykube",
            "server",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--kubeconfig-out",
            self.kubeconfig,
            *storage_args,
            *extra_args,
        ]
        if not controllers:
            self._argv.append("--no-controllers")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServerHandle:
        """Start (or restart, on the same port and data) and wait until ready."""
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.process = subprocess.Popen(
                self._argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(Path(__file__).resolve().parents[2]),
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"tinykube server exited with {self.process.returncode}:\n{self.log_tail()}")
            if Path(self.ca_file).exists() and self._ready():
                return
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"tinykube server not ready after {timeout}s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", context=ctx, timeout=2) as resp:
                return bool(resp.status == 200)
        except urllib.error.HTTPError as err:
            err.close()
            return False
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    def admin_ssl_context(self) -> ssl.SSLContext:
        """A client TLS context with the admin certificate from the kubeconfig (for raw HTTP clients)."""
        cfg = yaml.safe_load(Path(self.kubeconfig).read_text())
        user = cfg["users"][0]["user"]
        ctx = ssl.create_default_context(cafile=self.ca_file)
        with tempfile.TemporaryDirectory() as d:
            crt, key = Path(d) / "c.crt", Path(d) / "c.key"
            crt.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            ctx.load_cert_chain(crt, key)
        return ctx

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: a crash, for durability tests."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait(5)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    tmp_path: str | os.PathLike[str],
    *,
    controllers: bool = True,
    storage: str = "sqlite",
    etcd_endpoints: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> ServerHandle:
    storage_args = ["--storage", storage]
    if etcd_endpoints:
        storage_args += ["--etcd-endpoints", ",".join(etcd_endpoints)]
    handle = ServerHandle(Path(tmp_path), controllers=controllers, storage_args=storage_args, extra_args=extra_args)
    return handle.start(timeout)
