"""The API server's own `/metrics` counters: requests by verb, resource and HTTP code (the shape of
kube-apiserver's `apiserver_request_total`), rendered in the Prometheus text format next to the
controllers' work-queue metrics of the same process."""

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

    def observe(self, verb: str, resource: str, code: int) -> None:
        self._counts[(verb.upper(), resource, code)] += 1

    def render(self) -> str:
        lines = [
            "# HELP apiserver_request_total Requests served, by verb, resource and HTTP response code.",
            "# TYPE apiserver_request_total counter",
        ]
        for (verb, resource, code), n in sorted(self._counts.items()):
            labels = f'verb="{_escape(verb)}",resource="{_escape(resource)}",code="{code}"'
            lines.append(f"apiserver_request_total{{{labels}}} {n}")
        return "\n".join(lines) + "\n"


def render(requests: RequestCounter) -> str:
    """The whole `/metrics` page: this server's counters, then the in-process work queues."""
    return requests.render() + queue_metrics.render()
