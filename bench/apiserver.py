"""API server speed: pod creates/s from 50 concurrent clients, watch delivery latency to 100
watchers, and listing 5,000 pods (raw JSON and `kubectl get pods`).

    .venv/bin/python -m bench.apiserver [--pods 5000] [--clients 50] [--watchers 100]

References measured in the same run: the store's own create rate under the same concurrency
(in-process SQLite backend, and etcd-server on loopback when /usr/bin/etcd exists, through our
etcd backend), so the API's cost (HTTPS, JSON, admission, validation, cache) shows as a ratio.
Goals (issue 6): ≥ 1,000 creates/s on SQLite, watch p99 < 100 ms, `kubectl get pods` of 5,000 < 1 s.
Run it in a private network namespace when you can (it only uses 127.0.0.1)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from controlplane.storage import Backend
from controlplane.storage.sqlite import SQLiteBackend
from controlplane.testing.server import ServerHandle, start_server

NS = "bench"


def pod(name: str, sent: float | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app": "bench"}}
    if sent is not None:
        meta["annotations"] = {"bench/sent": repr(sent)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1d"]}]},
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def store_rate(store: Backend, n: int, clients: int) -> float:
    await store.start()
    body = json.dumps(pod("x")).encode()
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await store.create(f"/registry/core/pods/{NS}/p{i}", body)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    await store.close()
    return n / elapsed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def etcd_rate(n: int, clients: int, tmp: Path) -> float | None:
    etcd = shutil.which("etcd")
    if etcd is None:
        return None
    try:
        from controlplane.storage.etcd import EtcdBackend
    except ImportError:
        return None
    client_port, peer_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{client_port}"
    proc = subprocess.Popen(
        [
            etcd,
            "--data-dir",
            str(tmp / "etcd"),
            "--listen-client-urls",
            url,
            "--advertise-client-urls",
            url,
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(1.5)
        return await store_rate(EtcdBackend([url]), n, clients)
    finally:
        proc.terminate()
        proc.wait(10)


async def api_creates(srv: ServerHandle, n: int, clients: int) -> float:
    connector = aiohttp.TCPConnector(ssl=srv.admin_ssl_context(), limit=clients)
    async with aiohttp.ClientSession(base_url=srv.url, connector=connector) as http:
        async with http.post("/api/v1/namespaces", json={"metadata": {"name": NS}}) as resp:
            assert resp.status in (201, 409), await resp.text()
        counter = iter(range(n))
        failures = 0

        async def worker() -> None:
            nonlocal failures
            for i in counter:
                async with http.post(f"/api/v1/namespaces/{NS}/pods", json=pod(f"p{i}")) as resp:
                    await resp.read()
                    failures += resp.status != 201

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    if failures:
        print(f"  warning: {failures} creates failed")
    return n / elapsed


async def watch_latency(srv: ServerHandle, watchers: int, events: int) -> list[float]:
    ns = "bench-watch"
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(ssl=srv.admin_ssl_context(), limit=watchers + 20)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(base_url=srv.url, connector=connector, timeout=timeout) as http:
        async with http.post("/api/v1/namespaces", json={"metadata": {"name": ns}}) as resp:
            assert resp.status in (201, 409)
        ready = asyncio.Semaphore(0)

        async def watch() -> None:
            async with http.get(f"/api/v1/namespaces/{ns}/pods", params={"watch": "1", "resourceVersion": "0"}) as r:
                ready.release()
                seen = 0
                while seen < events:
                    line = await r.content.readline()
                    if not line:
                        return
                    ev = json.loads(line)
                    if ev["type"] != "ADDED":
                        continue
                    sent = float(ev["object"]["metadata"]["annotations"]["bench/sent"])
                    latencies.append(time.time() - sent)
                    seen += 1

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        for _ in range(watchers):
            await ready.acquire()
        await asyncio.sleep(0.2)
        for i in range(events):
            async with http.post(f"/api/v1/namespaces/{ns}/pods", json=pod(f"w{i}", time.time())) as resp:
                await resp.read()
            await asyncio.sleep(0.01)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return latencies


async def list_times(srv: ServerHandle) -> tuple[float, float, float]:
    connector = aiohttp.TCPConnector(ssl=srv.admin_ssl_context())
    async with aiohttp.ClientSession(base_url=srv.url, connector=connector) as http:
        t0 = time.perf_counter()
        async with http.get(f"/api/v1/namespaces/{NS}/pods") as resp:
            body = await resp.read()
        raw = time.perf_counter() - t0
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    env = {**os.environ, "HOME": str(srv.tmp_path)}
    t0 = time.perf_counter()
    subprocess.run([kubectl, "version", "--client"], capture_output=True, env=env, check=False)
    kubectl_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = subprocess.run(
        [kubectl, "--kubeconfig", srv.kubeconfig, "get", "pods", "-n", NS],
        capture_output=True,
        env=env,
        check=False,
    )
    get_pods = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr
    print(f"  list of {len(json.loads(body)['items'])} pods: {len(body) / 1e6:.1f} MB")
    return raw, get_pods, kubectl_start


async def run(pods: int, clients: int, watchers: int) -> int:
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-") as d:
        tmp = Path(d)
        print(f"reference: in-process SQLite store, {pods} creates from {clients} coroutines")
        sqlite_rate = await store_rate(SQLiteBackend(tmp / "ref.db"), pods, clients)
        print(f"  {sqlite_rate:,.0f} creates/s")
        etcd = await etcd_rate(pods, clients, tmp)
        if etcd is not None:
            print(f"reference: etcd-server on loopback through our etcd backend: {etcd:,.0f} creates/s")
        srv = start_server(tmp, controllers=False)
        try:
            print(f"API: {pods} pod creates over HTTPS from {clients} concurrent clients")
            rate = await api_creates(srv, pods, clients)
            print(f"  {rate:,.0f} creates/s = {rate / sqlite_rate:.2f}x the bare SQLite store", end="")
            print(f", {rate / etcd:.2f}x etcd's own write rate" if etcd else "")
            print(f"API: watch delivery to {watchers} watchers, 100 events")
            lat = await watch_latency(srv, watchers, 100)
            if lat:
                p50, p99, mean = pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000, statistics.mean(lat) * 1000
                print(f"  {len(lat)} deliveries: p50 {p50:.1f} ms, p99 {p99:.1f} ms, mean {mean:.1f} ms")
            raw, get_pods, kubectl_start = await list_times(srv)
            print(f"  raw JSON list: {raw * 1000:.0f} ms; `kubectl get pods`: {get_pods * 1000:.0f} ms ", end="")
            print(f"(kubectl's own start-up, `kubectl version --client`: {kubectl_start * 1000:.0f} ms)")
            goals = [
                ("creates/s >= 1000", rate >= 1000),
                ("watch p99 < 100 ms", bool(lat) and pct(lat, 0.99) < 0.1),
                ("kubectl get pods (5k) < 1 s", get_pods < 1.0),
            ]
            print("goals: " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in goals))
        finally:
            srv.stop()
    return 0


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="tinykube bench api", description=__doc__)
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--watchers", type=int, default=100)
    args = p.parse_args(list(argv))
    return asyncio.run(run(args.pods, args.clients, args.watchers))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
