"""`tinykube cri`: the CRI runtime daemon (gRPC runtime.v1 RuntimeService + ImageService).

The fork server is started first, while this process has a single thread; grpc is imported after.
SIGTERM/SIGINT stop serving and leave pods and containers running (they are not our children).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Sequence

DEFAULT_ROOT = "/var/lib/tinykube/cri"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinykube cri", description=__doc__)
    p.add_argument("--socket", default="/run/tinykube/cri.sock", help="unix socket to serve gRPC on")
    p.add_argument("--root", default=DEFAULT_ROOT, help="state directory (sandboxes, containers)")
    p.add_argument("--image-root", default="", help="image store directory (default: ROOT/images)")
    p.add_argument("--cni-conf-dir", default="/etc/cni/net.d")
    p.add_argument(
        "--cni-bin-dir", action="append", default=[], help="repeatable; default /opt/cni/bin and /usr/lib/cni"
    )
    p.add_argument("--cni-cache-dir", default="", help="default: ROOT/cni-cache")
    p.add_argument("--log-root", default="/var/log/pods", help="container logs when a sandbox names no log directory")
    p.add_argument("--cgroup-driver", default="auto", choices=("auto", "v1", "v2"))
    p.add_argument("--cgroup-fs", default="/sys/fs/cgroup", help="where the cgroup hierarchies are mounted")
    p.add_argument("--cgroup-root", default="tinykube", help="parent cgroup of pods that name none")
    p.add_argument("--default-pids-limit", type=int, default=0, help="pids.max for every container (0: none)")
    p.add_argument(
        "--pause",
        default="auto",
        choices=("auto", "binary", "python"),
        help="pause holder: the built-in static binary (x86-64) or the forked Python loop",
    )
    p.add_argument(
        "--streaming-address",
        default="127.0.0.1:0",
        help="host:port of the Exec/PortForward streaming server (port 0: any free port)",
    )
    p.add_argument("--no-builtin-images", action="store_true", help="do not build busybox/pause images at start")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s cri %(message)s")
    from cri.launcher import LauncherClient

    launcher = LauncherClient()
    launcher.start()  # before grpc creates any thread

    from cri.cgroups import new_manager
    from cri.images.store import ImageStore
    from cri.interfaces import HostProcesses
    from cri.network import CniNetwork
    from cri.pause_binary import ensure_pause_binary
    from cri.runtime import Runtime
    from cri.sandbox import Deps
    from cri.server import serve
    from cri.store import Store
    from cri.streaming import StreamingServer

    root = os.path.abspath(args.root)
    os.makedirs(root, exist_ok=True)
    images = ImageStore(args.image_root or os.path.join(root, "images"))
    if not args.no_builtin_images:
        images.ensure_builtin()
    pause = "" if args.pause == "python" else ensure_pause_binary(root, required=args.pause == "binary")
    deps = Deps(
        store=Store(root),
        launcher=launcher,
        cgroups=new_manager(args.cgroup_driver, args.cgroup_fs),
        network=CniNetwork(
            args.cni_conf_dir,
            args.cni_bin_dir or ["/opt/cni/bin", "/usr/lib/cni"],
            args.cni_cache_dir or os.path.join(root, "cni-cache"),
        ),
        images=images,
        processes=HostProcesses(),
        log_root=args.log_root,
        cgroup_root=args.cgroup_root,
        pause_binary=pause,
        default_pids_limit=args.default_pids_limit,
    )
    runtime = Runtime(deps)
    host, _, port = args.streaming_address.rpartition(":")
    streaming = StreamingServer(runtime, host=host or "127.0.0.1", port=int(port or 0))
    streaming.start()
    server = serve(runtime, images, args.socket, streaming=streaming)
    logging.info("serving CRI on %s (launcher pid %d, cgroup v%d)", args.socket, launcher.pid, deps.cgroups.version)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    code = 0
    while not stop.wait(1.0):
        # A new launcher cannot be forked from this threaded process: exit and let the supervisor
        # restart us (pods and containers keep running and are picked up again).
        if os.waitpid(launcher.pid, os.WNOHANG)[0] != 0:
            logging.error("the launcher (pid %d) died; exiting so that a fresh daemon can take over", launcher.pid)
            launcher.pid = 0
            code = 1
            break
    server.stop(grace=2).wait()
    streaming.stop()
    launcher.close()
    return code
