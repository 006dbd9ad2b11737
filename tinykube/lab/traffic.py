"""Bounded test traffic for labs, tests and benchmarks: a TCP+UDP echo host and a measuring client.

    python -m tinykube.lab.traffic serve NAME PORT [--lifetime S]
    python -m tinykube.lab.traffic tcp|udp HOST PORT [--count N] [--seconds S] [--stats [--versus HOST2]]

The server answers every connection or datagram with its NAME and exits by itself after --lifetime
seconds, so a failed test can never leave it serving. The client makes at most N attempts within S
seconds; each prints the reply or REFUSED / TIMEOUT / ERROR:<errno>, or with --stats one JSON line of
rate and latency percentiles. Stdlib only: it starts in ~10 ms, which matters under emulation.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

MAX_ATTEMPTS = 100_000


def serve(name: str, port: int, lifetime: float) -> None:
    reply = name.encode() + b"\n"
    tcp = socket.create_server(("0.0.0.0", port), reuse_port=True, backlog=1024)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))

    def udp_loop() -> None:
        while True:
            _, peer = udp.recvfrom(2048)
            udp.sendto(reply, peer)

    threading.Thread(target=udp_loop, daemon=True).start()
    tcp.settimeout(0.5)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        try:
            conn, _ = tcp.accept()
        except TimeoutError:
            continue
        with conn:
            conn.sendall(reply)


def tcp_once(host: str, port: int, timeout: float) -> str:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            return conn.recv(256).decode().strip() or "EMPTY"
    except ConnectionRefusedError:
        return "REFUSED"
    except TimeoutError:
        return "TIMEOUT"
    except OSError as err:
        return f"ERROR:{err.errno}"


def udp_once(host: str, port: int, timeout: float) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(b"ping", (host, port))
            return sock.recv(256).decode().strip() or "EMPTY"
        except ConnectionRefusedError:
            return "REFUSED"
        except TimeoutError:
            return "TIMEOUT"
        except OSError as err:
            return f"ERROR:{err.errno}"


@dataclass(frozen=True)
class Stats:
    attempts: int
    ok: int
    seconds: float
    rate: float  # successful attempts per second
    p50_ms: float
    p99_ms: float
    replies: dict[str, int]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values; 0 for none."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def measure(once: Callable[[], str], *, count: int, seconds: float) -> Stats:
    """Runs `once` up to `count` times or until `seconds` pass, timing each successful attempt."""
    latencies: list[float] = []
    replies: Counter[str] = Counter()
    started = time.perf_counter()
    deadline = started + seconds
    attempts = 0
    while attempts < min(count, MAX_ATTEMPTS) and time.perf_counter() < deadline:
        t0 = time.perf_counter()
        reply = once()
        attempts += 1
        replies[reply] += 1
        if reply not in ("REFUSED", "TIMEOUT", "EMPTY") and not reply.startswith("ERROR:"):
            latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Stats(
        attempts=attempts,
        ok=len(latencies),
        seconds=elapsed,
        rate=len(latencies) / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        replies=dict(replies),
    )


def measure_pair(
    first: Callable[[], str], second: Callable[[], str], *, count: int, seconds: float, batch: int = 20
) -> tuple[Stats, Stats]:
    """Measures two targets in alternating batches, so that drift in the machine's speed (an emulator
    drifts by ±15–20 %) falls on both alike and their ratio stays meaningful."""
    a: list[Stats] = []
    b: list[Stats] = []
    deadline = time.perf_counter() + seconds
    rounds = max(1, count // (2 * batch))
    for _ in range(rounds):
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        a.append(measure(first, count=batch, seconds=left / 2))
        b.append(measure(second, count=batch, seconds=max(0.01, deadline - time.perf_counter())))
    return _combine(a), _combine(b)


def _combine(parts: Sequence[Stats]) -> Stats:
    ok = sum(p.ok for p in parts)
    elapsed = sum(p.seconds for p in parts)
    replies: Counter[str] = Counter()
    for p in parts:
        replies.update(p.replies)
    p50s = sorted(p.p50_ms for p in parts if p.ok)
    p99s = sorted(p.p99_ms for p in parts if p.ok)
    return Stats(
        attempts=sum(p.attempts for p in parts),
        ok=ok,
        seconds=elapsed,
        rate=ok / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(p50s, 50),
        p99_ms=max(p99s, default=0.0),
        replies=dict(replies),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinykube.lab.traffic")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("name")
    s.add_argument("port", type=int)
    s.add_argument("--lifetime", type=float, default=120.0)
    for proto in ("tcp", "udp"):
        c = sub.add_parser(proto)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("--count", type=int, default=1)
        c.add_argument("--seconds", type=float, default=30.0)
        c.add_argument("--timeout", type=float, default=2.0)
        c.add_argument("--stats", action="store_true", help="print one JSON line of rate and latency")
        c.add_argument("--versus", metavar="HOST", help="with --stats: alternate with HOST, print both")
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        serve(args.name, args.port, args.lifetime)
        return 0
    attempt = tcp_once if args.cmd == "tcp" else udp_once

    def once() -> str:
        return attempt(args.host, args.port, args.timeout)

    if args.stats and args.versus:
        first, second = measure_pair(
            once, lambda: attempt(args.versus, args.port, args.timeout), count=args.count, seconds=args.seconds
        )
        print(json.dumps({"first": asdict(first), "second": asdict(second)}), flush=True)
        return 0
    if args.stats:
        print(json.dumps(asdict(measure(once, count=args.count, seconds=args.seconds))), flush=True)
        return 0
    deadline = time.monotonic() + args.seconds
    for _ in range(min(args.count, MAX_ATTEMPTS)):
        if time.monotonic() > deadline:
            break
        print(once(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
