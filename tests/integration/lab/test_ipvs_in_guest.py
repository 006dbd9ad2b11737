"""Runs the IPVS integration tests (tests/integration/ipvs) inside the qemu kernel lab, whose stock
Debian kernel has ip_vs; the guest's pytest output is shown when they fail."""

import os
import sys

import pytest

from tinykube.lab import kernel

REASON = kernel.available()


@pytest.mark.skipif(REASON is not None, reason=f"kernel lab cannot run here: {REASON}")
@pytest.mark.skipif(os.path.exists("/proc/net/ip_vs"), reason="this kernel has ip_vs: the tests ran directly")
def test_ipvs_integration_suite_passes_in_the_guest() -> None:
    result = kernel.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "-q",
            "tests/integration/ipvs",
        ],
        cwd=os.getcwd(),
        modules=kernel.NETWORK_MODULES,
    )
    assert result.exit_code == 0, result.output
    assert " passed" in result.output
    assert "skipped" not in result.output, result.output
