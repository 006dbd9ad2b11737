"""The API server's own `/metrics`: requests by verb, resource and HTTP code (the shape of
kube-apiserver's `apiserver_request_total`) and the time short requests took (a summary without
quantiles: `_sum`/`_count`; watches and streams are left out, they last as long as the client
wants), rendered in the Prometheus text format next to the controllers' work-queue metrics of the
same process."""

from __future__ import annotations

import collections

from controlplane.client import metrics as queue_metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class RequestCounter:
    """Counts finished requests; the label set is bounded (verbs × served resources × codes)."""

    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
        self._seconds: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)
        self._timed: collections.Counter[tuple[str, str]] = collections.Counter()

    def observe(self, verb: str, resource: str, code: int, seconds: float | None = None) -> None:
        """`seconds` is None for long-running requests (watch, logs, exec)."""
        verb = verb.upper()
        self._counts[(verb, resource, code)] += 1
        if seconds is not None:
            self._seconds[(verb, resource)] += seconds
            self._timed[(verb, resource)] += 1

    def render(self) -> str:
        lines = [
            "# HELP apiserver_request_total Requests served, by verb, resource and HTTP response code.",
            "# TYPE apiserver_request_total counter",
        ]
        for (verb, resource, code), n in sorted(self._counts.items()):
            labels = f'verb="{_escape(verb)}",resource="{_escape(resource)}",code="{code}"'
            lines.append(f"apiserver_request_total{{{labels}}} {n}")
        name = "apiserver_request_duration_seconds"
        lines += [f"# HELP {name} Time to answer requests other than watches and streams.", f"# TYPE {name} summary"]
        for (verb, resource), n in sorted(self._timed.items()):
            labels = f'verb="{_escape(verb)}",resource="{_escape(resource)}"'
            lines.append(f"{name}_sum{{{labels}}} {self._seconds[(verb, resource)]:.6f}")
            lines.append(f"{name}_count{{{labels}}} {n}")
        return "\n".join(lines) + "\n"


def render(requests: RequestCounter) -> str:
    """The whole `/metrics` page: this server's counters, then the in-process work queues."""
    return requests.render() + queue_metrics.render()
