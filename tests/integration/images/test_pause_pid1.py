"""The built-in pause program as pid 1 of a pid namespace: it reaps orphans and obeys SIGTERM."""

import os
import signal
import subprocess
import time

import pytest

from cri.images.pause_elf import pause_elf


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def pause_pid1(tmp_path):
    binary = tmp_path / "pause"
    binary.write_bytes(pause_elf())
    binary.chmod(0o755)
    outer = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", str(binary)])
    try:
        assert _wait_for(lambda: bool(_children(outer.pid)))
        [pause] = _children(outer.pid)
        assert _wait_for(lambda: os.readlink(f"/proc/{pause}/exe") == str(binary))
        yield outer, pause
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait()


def test_orphans_reparented_to_pause_are_reaped(pause_pid1):
    outer, pause = pause_pid1
    # sh exits at once; its `sleep` child is reparented to pid 1 of the namespace (pause) and exits later.
    orphan_maker = ["nsenter", "-t", str(pause), "--pid", "--", "sh", "-c", "sleep 1 & exit 0"]
    subprocess.run(orphan_maker, check=True, timeout=10)
    assert _wait_for(lambda: len(_children(pause)) == 1)  # the orphan is now pause's child
    assert _wait_for(lambda: _children(pause) == [])  # and after it exits, no zombie remains
    assert outer.poll() is None


def test_sigterm_from_the_parent_namespace_ends_pause_with_status_zero(pause_pid1):
    outer, pause = pause_pid1
    os.kill(pause, signal.SIGTERM)
    assert outer.wait(timeout=5) == 0
