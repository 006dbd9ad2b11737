"""A TCP relay that lets kubectl on the host reach the lab's API server without the lab touching the
host's network: `lab up` opens the listening socket on 127.0.0.1 in the host namespace and hands it
(as an inherited fd) to this process, which runs inside the hub netns, so every connection it opens
goes to the API server on the lab's underlay. `python -m tinykube.lab.netns_forward --fd 3 --to H:P`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from collections.abc import Sequence

CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def serve(listener: socket.socket, host: str, port: int) -> None:
    async def relay(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            u_reader, u_writer = await asyncio.open_connection(host, port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(_pipe(c_reader, u_writer), _pipe(u_reader, c_writer))

    server = await asyncio.start_server(relay, sock=listener)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m tinykube.lab.netns_forward", description=__doc__)
    p.add_argument("--fd", type=int, required=True, help="inherited listening TCP socket")
    p.add_argument("--to", required=True, help="HOST:PORT to relay each connection to")
    args = p.parse_args(list(argv))
    host, _, port = args.to.rpartition(":")
    listener = socket.socket(fileno=args.fd)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(listener, host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
