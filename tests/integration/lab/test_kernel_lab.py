"""Boots the qemu kernel lab for real: the guest kernel has ip_vs, and our venv runs in it."""

import os

import pytest

from tinykube.lab import kernel

REASON = kernel.available()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"kernel lab cannot run here: {REASON}")


def test_guest_loads_ip_vs_and_runs_the_project_venv() -> None:
    result = kernel.run(
        [".venv/bin/python", "-c", "import pyroute2, os; print('ipvs', os.path.exists('/proc/net/ip_vs'))"],
        cwd=os.getcwd(),
        modules=("ip_vs", "ip_vs_rr"),
    )
    assert result.exit_code == 0, result.output
    assert "ipvs True" in result.output


def test_guest_failure_status_is_reported() -> None:
    result = kernel.run(["sh", "-c", "echo out; exit 7"], cwd="/")
    assert result.exit_code == 7
    assert result.output.strip() == "out"
