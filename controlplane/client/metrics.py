"""Prometheus text rendering of work-queue depth and retry counters.

The control-plane process runs the API server and the controllers together, so the server's
`/metrics` handler appends `render()` to its own output. Queues are registered explicitly by whoever
creates them (the manager); the registry holds them weakly so a stopped controller disappears.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from controlplane.client.workqueue import RateLimitedQueue

_QUEUES: weakref.WeakSet[RateLimitedQueue] = weakref.WeakSet()


def register(queue: RateLimitedQueue) -> RateLimitedQueue:
    _QUEUES.add(queue)
    return queue


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(queues: list[RateLimitedQueue] | None = None) -> str:
    """Prometheus text exposition format 0.0.4 for the given (default: registered) queues."""
    qs = sorted(queues if queues is not None else list(_QUEUES), key=lambda q: q.name)
    families: tuple[tuple[str, str, str, Callable[[RateLimitedQueue], int]], ...] = (
        ("workqueue_depth", "gauge", "Keys waiting in the work queue.", lambda q: q.depth),
        ("workqueue_adds_total", "counter", "Keys added to the work queue.", lambda q: q.stats.adds),
        ("workqueue_retries_total", "counter", "Re-adds after a failed reconcile.", lambda q: q.stats.retries),
    )
    lines: list[str] = []
    for name, kind, help_text, value in families:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        # One series per queue name: queues of an ended leadership term may linger until collected.
        totals: dict[str, int] = {}
        for q in qs:
            totals[q.name] = totals.get(q.name, 0) + value(q)
        lines.extend(f'{name}{{name="{_escape(qname)}"}} {total}' for qname, total in totals.items())
    return "\n".join(lines) + "\n"
