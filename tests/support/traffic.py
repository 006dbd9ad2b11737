"""A bounded traffic client for tests: N TCP connections or UDP requests, one reply line each.

Run inside a test-made netns (`python -m tests.support.traffic tcp 10.96.0.10 80 --count 8`). Each
attempt prints the server's reply, or REFUSED / TIMEOUT / ERROR:<errno>, so a test can count where
its requests went and how they failed.
"""

from __future__ import annotations

import argparse
import socket


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("proto", choices=("tcp", "udp"))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    once = tcp_once if args.proto == "tcp" else udp_once
    for _ in range(min(args.count, 10_000)):
        print(once(args.host, args.port, args.timeout), flush=True)


if __name__ == "__main__":
    main()
