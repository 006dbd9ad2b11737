"""Container start latency: tinykube's CRI (Create+Start → process running → Stop+Remove, through
gRPC) against `crun` and `runc` (run -d → running → delete -f) on the same busybox rootfs, in the
same invocation, as ratios; plus the pause holder's RSS per pod.

    .venv/bin/python -m bench.container_start --containers 30

Runs itself inside fresh `unshare`d net/mount/pid namespaces with tmpfs state dirs; the one pod's
cgroup parent is unique and removed at the end. Each runtime gets untimed warm-up runs first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ISOLATED_ENV = "TINYKUBE_BENCH_ISOLATED"
ROOT = str(Path(__file__).resolve().parent.parent)
WARMUP = 3


def isolate(argv: Sequence[str]) -> int:
    # crun refuses a hybrid v1+v2 layout: hide the (controller-less) cgroup2 mount, in this private
    # mount namespace only, so all three runtimes drive the same v1 hierarchies.
    script = (
        "set -e; mount --make-rprivate /; ip link set lo up; "
        "umount /sys/fs/cgroup/unified 2>/dev/null || true; "
        "for d in /run/netns /run/tinykube /var/lib/cni /run/crun /run/runc; do "
        "mkdir -p $d; mount -t tmpfs bench $d; done; "
        'exec "$0" -m bench.container_start "$@"'
    )
    env = {**os.environ, ISOLATED_ENV: "1"}
    cmd = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "bash", "-c", script, sys.executable]
    return subprocess.run([*cmd, *argv], env=env, cwd=ROOT, check=False).returncode


def timed(fn: Callable[[int], Any], n: int) -> list[float]:
    for i in range(WARMUP):
        fn(-1 - i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def oci_bundle(work: Path, rootfs: str, runtime: str) -> Path:
    """`<runtime> spec` defaults with our rootfs (read-only, shared with the image store), no tty."""
    bundle = work / f"bundle-{runtime}"
    bundle.mkdir()
    subprocess.run([runtime, "spec"], cwd=bundle, check=True, capture_output=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": rootfs, "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sleep", "3600"]
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def spawn_quietly(argv: list[str]) -> None:
    """posix_spawn with /dev/null stdio: a detached container inherits the runtime's descriptors, so
    subprocess's exec-status pipe would stay open in it and `subprocess.run` would never return."""
    actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    pid = os.posix_spawnp(argv[0], argv, dict(os.environ), file_actions=actions)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with {os.waitstatus_to_exitcode(status)}")


def oci_cycle(runtime: str, bundle: Path) -> Callable[[int], None]:
    def cycle(i: int) -> None:
        cid = f"bench-{runtime}-{i + 100}-{uuid.uuid4().hex[:6]}"
        for argv in ([runtime, "run", "-d", "--bundle", str(bundle), cid], [runtime, "delete", "-f", cid]):
            spawn_quietly(argv)

    return cycle


def run_bench(n: int) -> str:
    import grpc

    from cri.api import api_pb2, api_pb2_grpc
    from cri.cgroups import new_manager
    from cri.images.store import ImageStore
    from cri.testing.daemon import start_cri

    work = Path(tempfile.mkdtemp(prefix="bench-container-"))
    images = str(work / "images")
    store = ImageStore(images)
    store.ensure_builtin()
    rootfs = store.layers("busybox")[-1]
    conf = work / "net.d"
    conf.mkdir()
    bridge = {"type": "bridge", "bridge": "tkbench0", "isGateway": True}
    bridge["ipam"] = {"type": "host-local", "ranges": [[{"subnet": "10.254.0.0/24"}]], "dataDir": str(work / "ipam")}
    (conf / "10-bench.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "bench", "plugins": [bridge]}))
    cgroup = f"tinykube-bench-{uuid.uuid4().hex[:8]}"
    handle = start_cri(
        work, image_root=images, cni_conf_dir=str(conf), cni_bin_dir=["/usr/lib/cni"], no_builtin_images=True
    )
    lines = []
    sid = ""
    rt: Any = None
    try:
        rt = api_pb2_grpc.RuntimeServiceStub(grpc.insecure_channel(f"unix:{handle.socket}"))
        sb_config = api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name="bench", namespace="bench", uid="bench"),
            log_directory=str(work / "logs"),
            linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{cgroup}/pod"),
        )
        t0 = time.perf_counter()
        sid = rt.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=sb_config)).pod_sandbox_id
        run_pod_ms = (time.perf_counter() - t0) * 1000
        holder = int(rt.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=sid, verbose=True)).info["pid"])
        rss_kb = _rss_kb(holder)
        phases: dict[str, list[float]] = {"create": [], "start": [], "stop": [], "remove": []}

        def ours(i: int) -> None:
            config = api_pb2.ContainerConfig(
                metadata=api_pb2.ContainerMetadata(name=f"c{i + 100}"),
                image=api_pb2.ImageSpec(image="busybox"),
                command=["sleep", "3600"],
                log_path=f"c{i + 100}.log",
            )
            marks = [time.perf_counter()]
            cid = rt.CreateContainer(api_pb2.CreateContainerRequest(pod_sandbox_id=sid, config=config)).container_id
            marks.append(time.perf_counter())
            rt.StartContainer(api_pb2.StartContainerRequest(container_id=cid))
            marks.append(time.perf_counter())
            rt.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=0))
            marks.append(time.perf_counter())
            rt.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=cid))
            marks.append(time.perf_counter())
            if i >= 0:
                for name, a, b in zip(phases, marks, marks[1:], strict=False):
                    phases[name].append((b - a) * 1000)

        results = {"tinykube cri (gRPC)": timed(ours, n)}
        for runtime in ("crun", "runc"):
            if shutil.which(runtime):
                results[runtime] = timed(oci_cycle(runtime, oci_bundle(work, rootfs, runtime)), n)
    finally:
        if sid:
            rt.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=sid))
        handle.stop()
        new_manager().remove(cgroup)
        shutil.rmtree(work, ignore_errors=True)
    crun = statistics.median(results["crun"]) if "crun" in results else None
    lines.append(f"container create+start(running)+stop+remove, busybox `sleep 3600`, {n} runs, median / p90 ms")
    for name, values in results.items():
        med = statistics.median(values)
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        ratio = f"{med / crun:6.2f}x crun" if crun else ""
        lines.append(f"  {name:<22} {med:8.1f} {p90:8.1f}   {ratio}")
    lines.append(
        "  tinykube phases (median ms): " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in phases.items())
    )
    lines.append(f"RunPodSandbox (pause holder + bridge CNI): {run_pod_ms:.1f} ms; pause holder RSS {rss_kb} KB")
    return "\n".join(lines)


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.container_start", description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=30, help="timed containers per runtime")
    args = parser.parse_args(argv)
    if os.environ.get(ISOLATED_ENV) != "1":
        if os.geteuid() != 0:
            print("bench.container_start needs root (it creates namespaces and cgroups)", file=sys.stderr)
            return 2
        return isolate(sys.argv[1:] if argv is None else list(argv))
    print(run_bench(args.containers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
