"""Pod startup latency on one node: API create → Running+Ready, for 1, 10 and 50 pods created at
once (p50/p99 per batch), and the node's memory cost per pod (RSS of noded + cri + launcher + pause
holders, with 50 pods running minus with none, divided by 50; container processes are not counted).

    .venv/bin/python -m bench.pod_startup [--counts 1,10,50] [--rounds 3]

Runs `tinykube up` inside fresh `unshare`d net/mount/pid namespaces with tmpfs state dirs; pods go
under a uniquely named cgroup parent that is removed at the end. Goal (issue 8): p99 ≤ 0.5 s for a
single pod (Kubernetes' SLO is 5 s), ≤ 3 MB RSS per pod.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

ISOLATED_ENV = "TINYKUBE_BENCH_ISOLATED"
ROOT = str(Path(__file__).resolve().parent.parent)
NODE = "bench-node"
CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "devices", "blkio")
# Processes that are not the node's per-pod cost: the control plane, the proxy, us, the containers.
NOT_NODE = (b"tinykube\0server", b"tinykube\0proxy", b"tinykube\0up", b"bench.pod_startup", b"sleep\0")


def isolate(argv: Sequence[str]) -> int:
    script = (
        "set -e; mount --make-rprivate /; ip link set lo up; "
        "for d in /run/netns /run/tinykube /var/lib/cni /var/lib/tinykube /etc/tinykube; do "
        "mkdir -p $d; mount -t tmpfs bench $d; done; "
        'exec "$0" -m bench.pod_startup "$@"'
    )
    env = {**os.environ, ISOLATED_ENV: "1"}
    cmd = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "bash", "-c", script, sys.executable]
    return subprocess.run([*cmd, *argv], env=env, cwd=ROOT, check=False).returncode


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def node_rss() -> tuple[int, int]:
    """(RSS, USS) summed over the node-side processes (noded, cri, its launcher, pause holders)."""
    rss = uss = 0
    me = os.getpid()
    for proc in psutil.process_iter():
        try:
            if proc.pid in (1, me):
                continue
            cmdline = b"\0".join(a.encode() for a in proc.cmdline())
            if not cmdline or any(marker in cmdline + b"\0" for marker in NOT_NODE) or b"bash" in cmdline[:20]:
                continue
            info = proc.memory_full_info()
            rss += info.rss
            uss += info.uss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return rss, uss


def pod(name: str, batch: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"bench": batch}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "main", "image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}
            ],
        },
    }


def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


async def run_batch(api: Any, count: int, batch: str) -> list[float]:
    """Create `count` pods at once; seconds from each create call to the first Ready it is seen with."""
    from controlplane.resources import PODS

    started: dict[str, float] = {}
    ready: dict[str, float] = {}
    listing = await api.list(PODS, "default", label_selector=f"bench={batch}")
    rv = listing["metadata"]["resourceVersion"]

    async def watch() -> None:
        async for ev in api.watch(PODS, "default", resource_version=rv, label_selector=f"bench={batch}"):
            name = ev.object.get("metadata", {}).get("name")
            if ev.type in ("ADDED", "MODIFIED") and name not in ready and is_ready(ev.object):
                ready[name] = time.perf_counter()
                if len(ready) == count:
                    return

    watcher = asyncio.create_task(watch())

    async def create(name: str) -> None:
        started[name] = time.perf_counter()
        await api.create(PODS, pod(name, batch), "default")

    await asyncio.gather(*(create(f"{batch}-{i}") for i in range(count)))
    await asyncio.wait_for(watcher, timeout=120 + count)
    return [ready[n] - started[n] for n in started]


async def delete_batch(api: Any, count: int, batch: str) -> None:
    from controlplane.resources import PODS

    await asyncio.gather(*(api.delete(PODS, f"{batch}-{i}", "default") for i in range(count)))
    deadline = time.monotonic() + 120
    while (await api.list(PODS, "default", label_selector=f"bench={batch}"))["items"]:
        if time.monotonic() > deadline:
            raise TimeoutError("pods were not deleted")
        await asyncio.sleep(0.2)
    while any(b"sleep\x003600" in cmdline for cmdline in _cmdlines()):
        if time.monotonic() > deadline:
            raise TimeoutError("pod processes were not stopped")
        await asyncio.sleep(0.2)


def _cmdlines() -> list[bytes]:
    out = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            out.append(b"\0".join(a.encode() for a in p.cmdline()))
    return out


async def measure(kubeconfig: str, counts: list[int], rounds: int) -> dict[str, Any]:
    from controlplane.client import KubeClient

    results: dict[str, Any] = {"batches": {}}
    async with KubeClient.from_kubeconfig(kubeconfig) as api:
        await run_batch(api, 1, "warmup")  # first pod pays image/cache warm-up
        await delete_batch(api, 1, "warmup")
        await asyncio.sleep(1)
        base_rss, base_uss = node_rss()
        for count in counts:
            latencies: list[float] = []
            for r in range(rounds):
                batch = f"b{count}-{r}"
                latencies += await run_batch(api, count, batch)
                if count == max(counts) and r == rounds - 1:
                    await asyncio.sleep(2)
                    rss, uss = node_rss()
                    results["rss_per_pod_mb"] = (rss - base_rss) / count / 2**20
                    results["uss_per_pod_mb"] = (uss - base_uss) / count / 2**20
                await delete_batch(api, count, batch)
            results["batches"][count] = {
                "pods": len(latencies),
                "p50_s": statistics.median(latencies),
                "p99_s": percentile(latencies, 0.99),
                "max_s": max(latencies),
            }
    return results


def run_isolated(args: argparse.Namespace) -> int:
    cgroup_root = f"tinykube-bench-{uuid.uuid4().hex[:8]}"
    data = Path(tempfile.mkdtemp(prefix="tk-bench-pods-"))
    out = open(data / "up.out", "wb")  # noqa: SIM115 - the child's stdout, closed below
    up = subprocess.Popen(
        [sys.executable, "-m", "tinykube", "up", "--data-dir", str(data), "--node-name", NODE, "--no-proxy",
         "--cgroup-root", cgroup_root, "--node-arg=--relist-period=0.5"],
        stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    out.close()
    try:
        deadline = time.monotonic() + 120
        while b"kubectl get nodes" not in (data / "up.out").read_bytes():
            if up.poll() is not None or time.monotonic() > deadline:
                print((data / "up.out").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.2)
        results = asyncio.run(measure(str(data / "admin.kubeconfig"), args.counts, args.rounds))
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
        remove_cgroup(cgroup_root)
    report(results, args.json)
    return 0


def remove_cgroup(name: str) -> None:
    """Kill what is left in the pods' cgroup parent (pods outlive a stopped noded by design), remove it."""
    for ctrl in CONTROLLERS:
        root = Path("/sys/fs/cgroup", ctrl, name)
        if not root.is_dir():
            continue
        below = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for d in [*below, root]:
            for _ in range(50):
                with contextlib.suppress(OSError, ValueError):
                    for pid in (d / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def report(results: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, indent=2))
        return
    print("pod startup: API create → Running+Ready, pods created at once on one node")
    print(f"{'pods':>6} {'samples':>8} {'p50 (s)':>9} {'p99 (s)':>9} {'max (s)':>9}")
    for count, b in results["batches"].items():
        print(f"{count:>6} {b['pods']:>8} {b['p50_s']:>9.3f} {b['p99_s']:>9.3f} {b['max_s']:>9.3f}")
    single = results["batches"].get(1)
    if single:
        print(f"single pod p99 {single['p99_s']:.3f} s = {single['p99_s'] / 0.5:.2f}x the 0.5 s goal "
              f"({single['p99_s'] / 5:.2f}x Kubernetes' 5 s SLO)")  # fmt: skip
    if "rss_per_pod_mb" in results:
        print(f"node memory per pod: RSS {results['rss_per_pod_mb']:.2f} MB, USS {results['uss_per_pod_mb']:.2f} MB "
              f"(goal ≤ 3 MB RSS)")  # fmt: skip


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="tinykube bench pods", description=__doc__)
    p.add_argument("--counts", default="1,10,50", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--rounds", type=int, default=3, help="batches per count (1-pod batches: x5)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(list(argv))
    if os.geteuid() != 0:
        print("bench pods needs root (namespaces, cgroups)", file=sys.stderr)
        return 2
    if not os.environ.get(ISOLATED_ENV):
        return isolate(argv)
    return run_isolated(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
