"""Run as a script inside a test netns host (stdlib only, bounded in time and count).

hostprog.py serve NAME PORT             TCP: greet "NAME PEER_IP" then echo lines; UDP: answer the same
hostprog.py connect PROTO IP PORT N [SPORT]  N new connections/datagrams; prints one JSON list of replies
hostprog.py hold IP PORT                one TCP connection: print the greeting, then echo stdin lines through it
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading

TIMEOUT = 2.0


def _echo(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        f = conn.makefile("rwb")
        for line in f:
            f.write(line)
            f.flush()


def serve(name: str, port: int) -> None:
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", port))
    tcp.listen(128)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))

    def udp_loop() -> None:
        while True:
            _, addr = udp.recvfrom(2048)
            udp.sendto(f"{name} {addr[0]}".encode(), addr)

    threading.Thread(target=udp_loop, daemon=True).start()
    print("ready", flush=True)
    while True:
        conn, addr = tcp.accept()
        conn.sendall(f"{name} {addr[0]}\n".encode())
        threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def connect(proto: str, ip: str, port: int, n: int, sport: int) -> None:
    replies = []
    for _ in range(n):
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as s:
            s.settimeout(TIMEOUT)
            if sport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", sport))
            try:
                if proto == "tcp":
                    s.connect((ip, port))
                    replies.append(s.makefile("rb").readline().decode().strip())
                else:
                    s.sendto(b"hi", (ip, port))
                    replies.append(s.recv(2048).decode())
            except ConnectionRefusedError:
                replies.append("refused")
            except TimeoutError:
                replies.append("timeout")
            except OSError as err:
                replies.append(f"error {err.errno}")
    print(json.dumps(replies), flush=True)


def hold(ip: str, port: int) -> None:
    with socket.create_connection((ip, port), timeout=TIMEOUT) as s:
        f = s.makefile("rwb")
        print(f.readline().decode().strip(), flush=True)
        for line in sys.stdin:
            f.write(line.encode())
            f.flush()
            print(f.readline().decode().strip(), flush=True)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "serve":
        serve(args[0], int(args[1]))
    elif cmd == "connect":
        connect(args[0], args[1], int(args[2]), int(args[3]), int(args[4]) if len(args) > 4 else 0)
    else:
        hold(args[0], int(args[1]))
