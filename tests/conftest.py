"""Test tiers and the fixtures every tier shares.

Tiers follow the directory a test lives in: tests/unit (no root), tests/integration (root, in
namespaces the test makes), tests/e2e (a whole cluster driven by kubectl, root). As root, `make test`
already runs the whole suite inside fresh net/mount/pid namespaces (tests/support/isolate.sh); the
fixtures below add per-test namespaces and cgroups on top, cleaned up even when a test fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.cgroups import ScratchCgroup, scratch_cgroup
from tests.support.namespaces import NetNS, add_netns, delete_netns, unique_name

IS_ROOT = os.geteuid() == 0
TIER_BY_DIR = {"unit": "unit", "integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root_reason = "needs root: it creates network namespaces, mounts or cgroups (CI runs as root)"
    for item in items:
        parts = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts
        tier = TIER_BY_DIR.get(parts[0]) if parts else None
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
        if tier in ("integration", "e2e") and not IS_ROOT:
            item.add_marker(pytest.mark.skip(reason=root_reason))


@pytest.fixture
def netns() -> Iterator[NetNS]:
    """A fresh network namespace with loopback up, deleted (with its processes) afterwards."""
    ns = add_netns(unique_name())
    try:
        yield ns
    finally:
        delete_netns(ns)


@pytest.fixture
def netns_factory() -> Iterator[Callable[[str], NetNS]]:
    """Makes as many namespaces as a test needs (e.g. client and backend hosts); all are removed."""
    made: list[NetNS] = []

    def make(prefix: str = "tkt") -> NetNS:
        ns = add_netns(unique_name(prefix))
        made.append(ns)
        return ns

    try:
        yield make
    finally:
        for ns in reversed(made):
            delete_netns(ns)


@pytest.fixture
def cgroup() -> Iterator[ScratchCgroup]:
    """A uniquely named cgroup in every hierarchy; its processes are killed and it is removed after."""
    with scratch_cgroup() as cg:
        yield cg


@pytest.fixture
def private_mounts() -> Callable[[Sequence[str]], subprocess.CompletedProcess[str]]:
    """Runs a command in its own private mount namespace, so whatever it mounts dies with it."""

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run
