"""A tiny TCP+UDP server for traffic tests: answers every connection or datagram with its name.

Run inside a test-made netns (`python -m tests.support.echo_server NAME PORT`); it exits by itself
after --lifetime seconds so a failed test can never leave it serving.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time


def serve(name: str, port: int, lifetime: float) -> None:
    reply = name.encode() + b"\n"
    tcp = socket.create_server(("0.0.0.0", port), reuse_port=True)
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("port", type=int)
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()
    serve(args.name, args.port, args.lifetime)
