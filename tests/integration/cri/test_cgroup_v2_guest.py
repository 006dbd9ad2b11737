"""The cgroup v2 driver against a real cgroup2 hierarchy: this host binds its controllers to v1, so
the test boots the qemu kernel lab (ENVIRONMENT.md) where a fresh cgroup2 mount has them all."""

import json
import os

import pytest

from tinykube.lab import kernel

REASON = kernel.available()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=f"kernel lab cannot run here: {REASON}"), pytest.mark.slow]


def test_v2_driver_limits_memory_pids_and_cpu_on_a_real_cgroup2_mount():
    result = kernel.run([".venv/bin/python", "-m", "tests.integration.cri.v2_guest"], cwd=os.getcwd())
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("V2-RESULT "))
    found = json.loads(line.removeprefix("V2-RESULT "))
    assert found["created"] is True
    assert {"+memory", "+pids", "+cpu"} <= {f"+{c}" for c in found["delegated"]}
    assert found["files"] == {
        "cpu.weight": "20",
        "cpu.max": "50000 100000",
        "memory.max": str(32 << 20),
        "pids.max": "8",
    }
    assert found["hog_exit"] in (-9, 137)
    assert 0 < found["pids"] <= 8
    assert found["fork_refusals"] > 0
    assert found["oom_kills"] >= 1
    assert found["cpu_ns"] > 0
    assert found["removed"] is True
