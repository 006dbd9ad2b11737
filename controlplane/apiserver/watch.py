"""Watch streams: newline-delimited JSON events (`{"type":…,"object":…}`) over a chunked response,
served from the cache. Resuming from a resourceVersion replays the cache's window (410 Gone as an
ERROR event when it is too old, as kube-apiserver does); with `allowWatchBookmarks` an idle stream
gets a BOOKMARK carrying the current resourceVersion every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from controlplane.apiserver.cache import CacheEvent, Entry, WatchCache
from controlplane.apiserver.errors import ApiError, BadRequest
from controlplane.resources import Resource

BOOKMARK_INTERVAL = 5.0
DEFAULT_TIMEOUT = 1800
_BATCH = 500

Predicate = Callable[[dict[str, Any]], bool]
Encoder = Callable[[str, Entry], bytes]


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


@dataclass(frozen=True)
class WatchParams:
    from_revision: int  # 0: start with the current state as ADDED events
    timeout: float
    bookmarks: bool
    initial_events_end: bool  # sendInitialEvents=true: mark the end of the initial state with a bookmark
    bookmark_interval: float = BOOKMARK_INTERVAL

    @classmethod
    def parse(cls, query: Any) -> WatchParams:
        rv = query.get("resourceVersion", "")
        try:
            from_revision = int(rv) if rv else 0
            timeout = int(query.get("timeoutSeconds") or DEFAULT_TIMEOUT)
        except ValueError as err:
            raise BadRequest(f"invalid resourceVersion or timeoutSeconds: {err}") from err
        return cls(
            from_revision=max(from_revision, 0),
            timeout=max(timeout, 1),
            bookmarks=_truthy(query.get("allowWatchBookmarks")),
            initial_events_end=_truthy(query.get("sendInitialEvents")),
        )


def translate(ev: CacheEvent, match: Predicate | None) -> str | None:
    """The event type a filtered watcher sees: an object entering the selection is ADDED, one leaving
    it is DELETED, changes outside it are not sent (kube-apiserver's watch-cache semantics)."""
    if match is None:
        return ev.type
    before = ev.prev is not None and match(ev.prev.obj)
    if ev.type == "DELETED":
        return "DELETED" if before or match(ev.entry.obj) else None
    if match(ev.entry.obj):
        return "MODIFIED" if before else "ADDED"
    return "DELETED" if before else None


def bookmark(res: Resource, revision: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": res.kind, "apiVersion": res.group_version, "metadata": meta}
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


def raw_encoder(etype: str, entry: Entry) -> bytes:
    return b'{"type":"' + etype.encode() + b'","object":' + entry.raw + b"}\n"


async def serve(
    request: web.Request,
    *,
    cache: WatchCache,
    res: Resource,
    prefix: str,
    params: WatchParams,
    match: Predicate | None,
    encode: Encoder,
    stopping: asyncio.Event,
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    try:
        watcher = cache.watch(prefix, params.from_revision or cache.revision)
    except ApiError as err:
        await resp.prepare(request)
        await resp.write(orjson.dumps({"type": "ERROR", "object": err.status()}) + b"\n")
        return resp
    # No await between registering the watcher and taking the snapshot: nothing can fall in between.
    initial = cache.list(prefix) if not params.from_revision else []
    start = cache.revision
    try:
        await resp.prepare(request)
        lines = [encode("ADDED", e) for e in initial if match is None or match(e.obj)]
        if lines:
            await resp.write(b"".join(lines))
        if params.bookmarks and params.initial_events_end:
            await resp.write(bookmark(res, start, initial_end=True))
        await _follow(
            resp, watcher.queue, cache=cache, res=res, params=params, match=match, encode=encode, stopping=stopping
        )
    except ConnectionError:
        pass
    finally:
        cache.unwatch(watcher)
    with contextlib.suppress(ConnectionError):
        await resp.write_eof()
    return resp


async def _follow(
    resp: web.StreamResponse,
    queue: asyncio.Queue[CacheEvent | None],
    *,
    cache: WatchCache,
    res: Resource,
    params: WatchParams,
    match: Predicate | None,
    encode: Encoder,
    stopping: asyncio.Event,
) -> None:
    deadline = time.monotonic() + params.timeout
    stop = asyncio.ensure_future(stopping.wait())
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getter, stop}, timeout=min(remaining, params.bookmark_interval), return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
                if stop in done:
                    return
                if params.bookmarks:
                    await resp.write(bookmark(res, cache.revision))
                continue
            batch: list[CacheEvent | None] = [getter.result()]
            while batch[-1] is not None and not queue.empty() and len(batch) < _BATCH:
                batch.append(queue.get_nowait())
            lines = []
            for ev in batch:
                if ev is None:
                    break
                etype = translate(ev, match)
                if etype is not None:
                    lines.append(encode(etype, ev.entry))
            if lines:
                await resp.write(b"".join(lines))
            if batch[-1] is None:  # the cache ended this watch (restart, or a consumer too slow)
                return
    finally:
        stop.cancel()
