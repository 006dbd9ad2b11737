"""A long-lived thread inside another network namespace, for netlink work from a process that itself
stays where it is (tests, benchmarks, labs)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class NetnsThread:
    """One thread inside the netns at `path` that runs the calls given to it, in order.

    A netns is per thread: sockets opened by the calls (netlink included) and processes they spawn
    live in the namespace. One thread for all calls, because some libraries (pyroute2) bind a socket to
    the thread and event loop that made it.
    """

    def __init__(self, path: str) -> None:
        from pyroute2 import netns as pyroute2_netns  # setns(2) for one thread; os.setns is 3.12+

        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="netns", initializer=pyroute2_netns.setns, initargs=(path, 0)
        )

    def call(self, fn: Callable[[], T], timeout: float = 600.0) -> T:
        return self._pool.submit(fn).result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> NetnsThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
