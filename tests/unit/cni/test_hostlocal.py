"""host-local allocation on a real directory (no root): distinct, round robin, reuse, exhaustion."""

from __future__ import annotations

import ipaddress
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cni import hostlocal
from cni.errors import PluginNotAvailable, TryAgainLater
from cni.types import PluginRequest


def request(tmp_path: Path, command: str, cid: str, *, ifname: str = "eth0", **ipam: Any) -> PluginRequest:
    conf = {
        "cniVersion": "1.0.0",
        "name": "net",
        "type": "tinykube-host-local",
        "ipam": {"type": "tinykube-host-local", "dataDir": str(tmp_path), "subnet": "10.2.0.0/29", **ipam},
    }
    return PluginRequest(command, cid, "/proc/self/ns/net", ifname, "", "/bin", json.dumps(conf).encode())


def address(result: dict[str, Any] | None) -> str:
    assert result is not None
    return str(result["ips"][0]["address"])


def test_allocates_distinct_addresses_skipping_gateway(tmp_path: Path) -> None:
    got = [address(hostlocal.handle(request(tmp_path, "ADD", f"c{i}"))) for i in range(5)]
    assert got == [f"10.2.0.{i}/29" for i in range(2, 7)]


def test_same_container_and_ifname_reuses_its_reservation(tmp_path: Path) -> None:
    first = address(hostlocal.handle(request(tmp_path, "ADD", "c1")))
    again = address(hostlocal.handle(request(tmp_path, "ADD", "c1")))
    other_if = address(hostlocal.handle(request(tmp_path, "ADD", "c1", ifname="net1")))
    assert first == again
    assert other_if != first


def test_exhausted_range_raises_try_again_and_status_reports_50(tmp_path: Path) -> None:
    for i in range(5):
        hostlocal.handle(request(tmp_path, "ADD", f"c{i}"))
    with pytest.raises(TryAgainLater) as err:
        hostlocal.handle(request(tmp_path, "ADD", "c-late"))
    assert err.value.code == 11
    with pytest.raises(PluginNotAvailable):
        hostlocal.handle(request(tmp_path, "STATUS", ""))
    hostlocal.handle(request(tmp_path, "DEL", "c0"))
    hostlocal.handle(request(tmp_path, "STATUS", ""))


def test_round_robin_continues_after_last_reserved(tmp_path: Path) -> None:
    hostlocal.handle(request(tmp_path, "ADD", "a"))
    hostlocal.handle(request(tmp_path, "DEL", "a"))
    # The freed .2 is not handed out again right away.
    assert address(hostlocal.handle(request(tmp_path, "ADD", "b"))) == "10.2.0.3/29"


def test_release_is_idempotent_and_gc_keeps_only_valid(tmp_path: Path) -> None:
    for cid in ("a", "b", "c"):
        hostlocal.handle(request(tmp_path, "ADD", cid))
    hostlocal.handle(request(tmp_path, "DEL", "a"))
    hostlocal.handle(request(tmp_path, "DEL", "a"))
    gc = request(tmp_path, "GC", "")
    conf = json.loads(gc.stdin)
    conf["cni.dev/valid-attachments"] = [{"containerID": "c", "ifname": "eth0"}]
    hostlocal.handle(PluginRequest("GC", path="/bin", stdin=json.dumps(conf).encode()))
    left = sorted(p.name for p in (tmp_path / "net").iterdir() if p.name[0].isdigit())
    assert left == ["10.2.0.4"]


def test_concurrent_allocations_from_threads_never_collide(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        got = list(
            pool.map(
                lambda i: address(hostlocal.handle(request(tmp_path, "ADD", f"c{i}", subnet="10.3.0.0/24"))), range(60)
            )
        )
    assert len(set(got)) == 60


def test_ranges_with_start_end_and_two_range_sets(tmp_path: Path) -> None:
    ranges = [
        [{"subnet": "10.4.0.0/24", "rangeStart": "10.4.0.100", "rangeEnd": "10.4.0.101"}],
        [{"subnet": "fd00::/120"}],
    ]
    result = hostlocal.handle(request(tmp_path, "ADD", "x", ranges=ranges, subnet=None))
    assert result is not None
    ips = [ipaddress.ip_interface(i["address"]) for i in result["ips"]]
    assert [str(i) for i in ips] == ["10.4.0.100/24", "fd00::2/120"]
    assert result["ips"][1]["gateway"] == "fd00::1"


def test_gc_without_valid_attachments_key_releases_nothing(tmp_path: Path) -> None:
    hostlocal.handle(request(tmp_path, "ADD", "a"))
    hostlocal.handle(request(tmp_path, "GC", ""))
    assert (tmp_path / "net" / "10.2.0.2").exists()
