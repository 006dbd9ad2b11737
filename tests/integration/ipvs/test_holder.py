"""The holder link's addresses, written in rtnetlink batches, in a test-made netns (no ip_vs needed:
the holder is a plain link; this kernel has no dummy driver, so it is the bridge fallback here)."""

from __future__ import annotations

import pytest

from netproxy.errors import ApplyError
from netproxy.ipvs.kernel import HolderInterface
from tests.support.namespaces import NetNS
from tinykube.lab.nsthread import NetnsThread


def _listed(netns: NetNS) -> set[str]:
    out = netns.run(["ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0"]).stdout
    return {line.split()[3].removesuffix("/32") for line in out.splitlines()}


def test_holder_adds_and_removes_addresses_in_batches_idempotently(netns: NetNS) -> None:
    with NetnsThread(netns.path) as thread:
        holder = thread.call(HolderInterface)
        try:
            many = {f"10.96.{i // 250}.{i % 250 + 1}" for i in range(600)}  # more than one batch
            thread.call(lambda: holder.sync(many))
            assert _listed(netns) == many
            assert thread.call(holder.addresses) == many
            thread.call(lambda: holder.update(["10.96.9.9", "10.96.0.1"], ["10.96.0.2", "10.96.77.77"]))
            assert _listed(netns) == (many | {"10.96.9.9"}) - {"10.96.0.2"}  # present / absent: no error
            netns.run(["ip", "link", "del", "kube-ipvs0"])  # someone removed the link: a real refusal
            with pytest.raises(ApplyError, match=r"add 10\.96\.1\.1 on kube-ipvs0: ENODEV"):
                thread.call(lambda: holder.update(["10.96.1.1"], []))
        finally:
            thread.call(holder.close)
