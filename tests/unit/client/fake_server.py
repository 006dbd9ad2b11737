"""A tiny in-memory API server (pods only) for exercising the client's HTTP, error and watch paths."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.rv = 1
        self.oldest_watchable = 0
        self.changed = asyncio.Condition()
        self.requests: list[web.Request] = []
        self.app = web.Application()
        base = "/api/v1/namespaces/{ns}/pods"
        self.app.router.add_get(base, self.list_or_watch)
        self.app.router.add_post(base, self.create)
        self.app.router.add_get(base + "/{name}", self.get)
        self.app.router.add_delete(base + "/{name}", self.delete)
        self.app.router.add_patch(base + "/{name}", self.patch)

    @staticmethod
    def status(code: int, reason: str, message: str) -> web.Response:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        }
        return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")

    async def put(self, etype: str, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        if etype == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.events.append((self.rv, etype, obj))
        async with self.changed:
            self.changed.notify_all()

    async def create(self, req: web.Request) -> web.Response:
        self.requests.append(req)
        obj = orjson.loads(await req.read())
        obj["metadata"]["namespace"] = req.match_info["ns"]
        if f"{req.match_info['ns']}/{obj['metadata']['name']}" in self.objects:
            return self.status(409, "AlreadyExists", "exists")
        await self.put("ADDED", obj)
        return web.Response(status=201, body=orjson.dumps(obj), content_type="application/json")

    async def get(self, req: web.Request) -> web.Response:
        self.requests.append(req)
        obj = self.objects.get(f"{req.match_info['ns']}/{req.match_info['name']}")
        if obj is None:
            return self.status(404, "NotFound", "not found")
        return web.Response(body=orjson.dumps(obj), content_type="application/json")

    async def patch(self, req: web.Request) -> web.Response:
        self.requests.append(req)
        obj = self.objects.get(f"{req.match_info['ns']}/{req.match_info['name']}")
        if obj is None:
            return self.status(404, "NotFound", "not found")
        obj = {**obj, "metadata": dict(obj["metadata"])}
        patch = orjson.loads(await req.read())
        obj["metadata"].setdefault("labels", {}).update((patch.get("metadata") or {}).get("labels") or {})
        await self.put("MODIFIED", obj)
        return web.Response(body=orjson.dumps(obj), content_type="application/json")

    async def delete(self, req: web.Request) -> web.Response:
        self.requests.append(req)
        obj = self.objects.get(f"{req.match_info['ns']}/{req.match_info['name']}")
        if obj is None:
            return self.status(404, "NotFound", "not found")
        await self.put("DELETED", dict(obj))
        return web.Response(body=orjson.dumps(obj), content_type="application/json")

    async def list_or_watch(self, req: web.Request) -> web.StreamResponse:
        self.requests.append(req)
        if req.query.get("watch"):
            return await self.watch(req)
        body = {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self.rv)},
            "items": list(self.objects.values()),
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def watch(self, req: web.Request) -> web.StreamResponse:
        since = int(req.query.get("resourceVersion") or self.rv)
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(req)
        if since < self.oldest_watchable:
            err = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
            await resp.write(orjson.dumps({"type": "ERROR", "object": err}) + b"\n")
            return resp
        sent = since
        timeout = float(req.query.get("timeoutSeconds") or 30)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for rv, etype, obj in self.events:
                if rv > sent:
                    # Split each event across two writes to prove the client reassembles lines.
                    line = orjson.dumps({"type": etype, "object": obj}) + b"\n"
                    await resp.write(line[:7])
                    await resp.write(line[7:])
                    sent = rv
            async with self.changed:
                try:
                    await asyncio.wait_for(self.changed.wait(), deadline - loop.time())
                except TimeoutError:
                    break
        return resp


def pod(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels}}
