"""A TCP relay from 127.0.0.1:PORT inside a test netns to 127.0.0.1:PORT where pytest runs, so a daemon in a
node netns reaches an API server started by `start_server` with the same kubeconfig (same address,
same certificate). The listening socket is made by a thread that entered the netns with setns(2); a
socket stays in the netns it was made in."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _listen_in(ns_path: str, port: int) -> socket.socket:
    made: list[socket.socket] = []
    errors: list[BaseException] = []

    def work() -> None:
        fd = os.open(ns_path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(16)
            made.append(s)
        except BaseException as err:  # handed to the caller's thread
            errors.append(err)
        finally:
            os.close(fd)

    t = threading.Thread(target=work)  # the thread (and its netns) ends here
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return made[0]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def relay(ns_path: str, port: int) -> Iterator[None]:
    listener = _listen_in(ns_path, port)
    conns: list[socket.socket] = []

    def accept_loop() -> None:
        with contextlib.suppress(OSError):
            while True:
                inner, _ = listener.accept()
                outer = socket.create_connection(("127.0.0.1", port), timeout=10)
                outer.settimeout(None)
                conns.extend((inner, outer))
                threading.Thread(target=_pump, args=(inner, outer), daemon=True).start()
                threading.Thread(target=_pump, args=(outer, inner), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for c in conns:
            c.close()
