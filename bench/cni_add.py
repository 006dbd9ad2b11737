"""CNI ADD+DEL latency: our plugins (executables with the agent, the agent's socket called without
an exec, in-process handlers, executables alone) against the reference `bridge` + `host-local`, in the
same run, as ratios.

    .venv/bin/python -m bench.cni_add --pods 20

Runs itself inside fresh `unshare`d net/mount/pid namespaces (tmpfs over /run/netns and its state
dirs), so nothing touches the host. Pod namespaces are made before the clock starts; each mode gets
its own bridge and IPAM directory and one untimed warm-up ADD+DEL. Long-lived handlers (agent,
in-process) delete the veth after DEL returns; the benchmark waits, untimed, for that to finish
before the next call, so DEL is timed as the runtime sees it and no mode pays for another's cleanup.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE_BIN = "/usr/lib/cni"
ISOLATED_ENV = "TINYKUBE_BENCH_ISOLATED"
ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Mode:
    name: str
    bridge_type: str
    ipam_type: str
    bin_dirs: tuple[str, ...]
    handlers: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Timing:
    mode: str
    per_pod_ms: float
    add_ms: float
    del_ms: float


def conflist(mode: Mode, index: int, work: Path, *, ip_masq: bool) -> Any:
    from cni import invoke

    return invoke.parse_conflist(
        {
            "cniVersion": "1.0.0",
            "name": f"bench{index}",
            "plugins": [
                {
                    "type": mode.bridge_type,
                    "bridge": f"tkb{index}",
                    "isGateway": True,
                    "isDefaultGateway": True,
                    "hairpinMode": True,
                    "ipMasq": ip_masq,
                    "ipam": {
                        "type": mode.ipam_type,
                        "ranges": [[{"subnet": f"10.{200 + index}.0.0/16"}]],
                        "dataDir": str(work / f"ipam{index}"),
                    },
                }
            ],
        }
    )


def make_netns(count: int) -> list[str]:
    names = [f"bp-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    return [f"/run/netns/{n}" for n in names]


def time_modes(modes: Sequence[Mode], confs: Sequence[Any], pods: Sequence[Sequence[str]]) -> list[Timing]:
    """ADD then DEL per pod, the modes interleaved pod by pod so that load from other processes on
    the machine hits every mode alike; one untimed warm-up per mode first."""
    from cni import invoke

    def add(mode: Mode, conf: Any, netns: str, cid: str) -> None:
        invoke.add(conf, cid, netns, "eth0", list(mode.bin_dirs), handlers=mode.handlers)

    def delete(mode: Mode, conf: Any, netns: str, cid: str) -> None:
        invoke.delete(conf, cid, netns, "eth0", list(mode.bin_dirs), handlers=mode.handlers)

    from cni.bridge import host_veth_name
    from cni.netlink import PyRoute2Opener

    host = PyRoute2Opener().host()

    def settle(conf: Any, cid: str) -> None:
        """Untimed: wait for a background veth deletion, so it cannot slow the next timed call
        (veth deletion holds the kernel's RTNL lock through an RCU grace period)."""
        name = host_veth_name(conf.name, cid, "eth0")
        deadline = time.monotonic() + 10
        while host.link(name) is not None and time.monotonic() < deadline:
            time.sleep(0.001)
        # The name goes before the kernel finishes (it still holds RTNL through the RCU wait).
        time.sleep(0.05)

    adds: list[list[float]] = [[] for _ in modes]
    dels: list[list[float]] = [[] for _ in modes]
    for i, (mode, conf) in enumerate(zip(modes, confs, strict=True)):
        warm_id = uuid.uuid4().hex
        add(mode, conf, pods[i][0], warm_id)
        delete(mode, conf, pods[i][0], warm_id)
    for n in range(1, len(pods[0])):
        for i, (mode, conf) in enumerate(zip(modes, confs, strict=True)):
            cid = uuid.uuid4().hex
            t0 = time.perf_counter()
            add(mode, conf, pods[i][n], cid)
            t1 = time.perf_counter()
            delete(mode, conf, pods[i][n], cid)
            t2 = time.perf_counter()
            adds[i].append(t1 - t0)
            dels[i].append(t2 - t1)
            settle(conf, cid)
    host.close()
    timings = []
    for mode, a, d in zip(modes, adds, dels, strict=True):
        add_ms, del_ms = statistics.median(a) * 1000, statistics.median(d) * 1000
        timings.append(Timing(mode.name, add_ms + del_ms, add_ms, del_ms))
    return timings


@contextlib.contextmanager
def agent(socket_path: str) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, "-m", "cni.agent", "--socket", socket_path], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(socket_path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("agent did not start")
            time.sleep(0.02)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run(pods: int, *, ip_masq: bool, skip_no_agent: bool) -> list[Timing]:
    with tempfile.TemporaryDirectory(prefix="cni-bench-") as tmp:
        return run_in(Path(tmp), pods, ip_masq=ip_masq, skip_no_agent=skip_no_agent)


def run_in(work: Path, pods: int, *, ip_masq: bool, skip_no_agent: bool) -> list[Timing]:
    from cni import registry
    from cni.client import agent_handlers
    from cni.install import install

    socket_path = str(work / "cni.sock")
    with_agent, alone = work / "bin-agent", work / "bin-alone"
    install(with_agent, work / "net.d", pod_cidr="10.250.0.0/16", agent_socket=socket_path)
    install(alone, work / "net.d", pod_cidr="10.250.0.0/16", agent_socket=str(work / "no-such.sock"))
    in_process = registry.handlers()
    modes = [
        Mode("reference bridge+host-local (exec)", "bridge", "host-local", (REFERENCE_BIN,)),
        Mode("tinykube exec + agent", registry.BRIDGE, registry.HOST_LOCAL, (str(with_agent),)),
        Mode(
            "tinykube agent socket, no exec",
            registry.BRIDGE,
            registry.HOST_LOCAL,
            (str(with_agent),),
            agent_handlers(socket_path),
        ),
        Mode("tinykube in-process handlers", registry.BRIDGE, registry.HOST_LOCAL, (str(with_agent),), in_process),
    ]
    if not skip_no_agent:
        modes.append(Mode("tinykube exec, no agent", registry.BRIDGE, registry.HOST_LOCAL, (str(alone),)))
    confs = [conflist(mode, index, work, ip_masq=ip_masq) for index, mode in enumerate(modes)]
    netns = [make_netns(pods + 1) for _ in modes]  # before the clock: +1 for the warm-up
    with agent(socket_path):
        timings = time_modes(modes, confs, netns)
    in_process.close()
    return timings


def report(timings: Sequence[Timing], pods: int, *, ip_masq: bool) -> str:
    reference = timings[0].per_pod_ms
    lines = [
        f"CNI ADD+DEL, {pods} pods per mode, ipMasq={'on' if ip_masq else 'off'} (median per pod, modes interleaved)",
        f"{'mode':<40} {'ADD ms':>8} {'DEL ms':>8} {'ADD+DEL ms':>11} {'vs reference':>13}",
    ]
    for t in timings:
        ratio = t.per_pod_ms / reference
        lines.append(f"{t.mode:<40} {t.add_ms:8.1f} {t.del_ms:8.1f} {t.per_pod_ms:11.1f} {ratio:12.2f}x")
    return "\n".join(lines)


def isolate(argv: Sequence[str]) -> int:
    """Re-run this module inside private namespaces with tmpfs state dirs."""
    script = (
        "set -e; mount --make-rprivate /; ip link set lo up; "
        "for d in /run/netns /run/tinykube /var/lib/cni; do mkdir -p $d; mount -t tmpfs bench $d; done; "
        'exec "$0" -m bench.cni_add "$@"'
    )
    env = {**os.environ, ISOLATED_ENV: "1"}
    cmd = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "bash", "-c", script, sys.executable]
    return subprocess.run([*cmd, *argv], env=env, cwd=ROOT, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.cni_add", description="CNI ADD+DEL latency vs the reference plugins")
    parser.add_argument("--pods", type=int, default=20, help="timed pods per mode")
    parser.add_argument("--ip-masq", action="store_true", help="enable ipMasq in every mode")
    parser.add_argument("--skip-no-agent", action="store_true", help="leave out the slow no-agent mode")
    args = parser.parse_args(argv)
    if os.environ.get(ISOLATED_ENV) != "1":
        if os.geteuid() != 0:
            print("bench.cni_add needs root (it creates namespaces)", file=sys.stderr)
            return 2
        return isolate(list(argv if argv is not None else sys.argv[1:]))
    timings = run(args.pods, ip_masq=args.ip_masq, skip_no_agent=args.skip_no_agent)
    print(report(timings, args.pods, ip_masq=args.ip_masq))
    return 0


if __name__ == "__main__":
    sys.exit(main())
