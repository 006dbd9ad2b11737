"""Runs inside the qemu kernel lab guest (a pure cgroup v2 kernel with controllers): exercises the
real V2Manager against a real cgroup2 mount and prints one JSON line of findings for the test."""

from __future__ import annotations

import json
import os
import subprocess
import time

from cri.cgroups import Resources, V2Manager


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _child(procs: str, body: str) -> int:
    """Fork a process that joins the cgroup, then runs `sh -c body`; returns its wait status."""
    pid = os.fork()
    if pid == 0:
        with open(procs, "w") as f:
            f.write("0")
        os.execv("/bin/sh", ["sh", "-c", body])
    return os.waitpid(pid, 0)[1]


def main() -> None:
    subprocess.run(["mount", "-t", "tmpfs", "lab", "/mnt"], check=True)
    os.mkdir("/mnt/cg")
    subprocess.run(["mount", "-t", "cgroup2", "none", "/mnt/cg"], check=True)
    mgr = V2Manager("/mnt/cg")
    out: dict[str, object] = {"created": mgr.create("tk/pod/c1")}
    with open("/mnt/cg/tk/cgroup.subtree_control") as f:
        out["delegated"] = sorted(f.read().split())
    mgr.set_resources(
        "tk/pod/c1",
        Resources(cpu_shares=512, cpu_quota=50000, cpu_period=100000, memory_limit=32 << 20, pids_limit=8),
    )
    d = "/mnt/cg/tk/pod/c1"
    out["files"] = {n: _read(f"{d}/{n}") for n in ("cpu.weight", "cpu.max", "memory.max", "pids.max")}
    procs = mgr.procs_files("tk/pod/c1")[0]
    hog = _child(procs, "tail /dev/zero")
    out["hog_exit"] = os.waitstatus_to_exitcode(hog)  # -9, or 137 when sh reports its killed child
    _child(procs, "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done 2>/dev/null")
    stats = mgr.stats("tk/pod/c1")
    out["pids"] = stats.pids
    out["fork_refusals"] = int(_read(f"{d}/pids.events").split()[1])
    out["oom_kills"] = stats.oom_kills
    out["cpu_ns"] = stats.cpu_usage_ns
    deadline = time.monotonic() + 20  # killed tasks leave the cgroup asynchronously (slow under emulation)
    while True:
        for pid in mgr.pids("tk/pod/c1"):
            os.kill(pid, 9)
        try:
            mgr.remove("tk/pod")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    out["removed"] = not os.path.exists("/mnt/cg/tk/pod")
    print("V2-RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
