import signal
import subprocess
import time

import pytest

from cri.images.pause_elf import pause_elf


@pytest.fixture
def pause_binary(tmp_path):
    path = tmp_path / "pause"
    path.write_bytes(pause_elf())
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_pause_runs_until_sigterm_or_sigint_then_exits_zero(pause_binary, sig):
    proc = subprocess.Popen([pause_binary])
    try:
        time.sleep(0.1)
        assert proc.poll() is None
        proc.send_signal(signal.SIGCHLD)  # ignored, not fatal
        time.sleep(0.05)
        assert proc.poll() is None
        proc.send_signal(sig)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_pause_is_tiny():
    assert len(pause_elf()) < 512
