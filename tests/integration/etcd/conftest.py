"""A real etcd (Debian's etcd-server) on loopback ports for the tests in this directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One etcd member per test module (tests use their own key prefixes); killed afterwards."""
    if not Path(ETCD).exists():
        pytest.skip("etcd-server is not installed")
    data = tmp_path_factory.mktemp("etcd")
    client, peer = free_port(), free_port()
    log = (data / "etcd.log").open("w")
    proc = subprocess.Popen(
        [
            ETCD,
            "--name=t",
            f"--data-dir={data / 'member'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=t=http://127.0.0.1:{peer}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        yield f"http://127.0.0.1:{client}"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
