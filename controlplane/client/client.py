"""`KubeClient`: the async REST client every tinykube component talks to the API server with.

One aiohttp session (TLS with the kubeconfig's CA and client certificate, or a bearer token), orjson
bodies, failures turned into typed `ApiError`s from the server's `metav1.Status`, and watches read as
newline-delimited JSON from a chunked response.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import ssl
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from controlplane.client.errors import ApiError, ConnectionFailed, error_from_status
from controlplane.client.kubeconfig import Credentials, load_kubeconfig
from controlplane.client.types import PATCH_CONTENT_TYPES, PatchType, WatchEvent
from controlplane.resources import Resource

# Plain requests must not hang a reconcile forever; watches have no total timeout (they are long polls).
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


def _selector_params(
    label_selector: str | None, field_selector: str | None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    params = dict(extra or {})
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")


class KubeClient:
    """Async client for the Kubernetes REST API subset tinykube serves (and real clusters serve)."""

    def __init__(
        self,
        server: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
        namespace: str = "default",
        user_agent: str = "tinykube",
    ) -> None:
        self.server = server.rstrip("/")
        self.namespace = namespace
        self._ssl = ssl_context
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_credentials(cls, creds: Credentials, *, user_agent: str = "tinykube") -> KubeClient:
        return cls(
            creds.server,
            ssl_context=creds.ssl_context(),
            token=creds.token,
            namespace=creds.namespace,
            user_agent=user_agent,
        )

    @classmethod
    def from_kubeconfig(
        cls, path: str | os.PathLike[str], *, context: str | None = None, user_agent: str = "tinykube"
    ) -> KubeClient:
        return cls.from_credentials(load_kubeconfig(path, context=context), user_agent=user_agent)

    # -- session -------------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        # Created lazily: aiohttp sessions belong to the running event loop.
        if self._session is None or self._session.closed:
            # No connection cap: every informer holds one long-lived watch connection.
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=0)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """One request; returns the decoded JSON body or raises the typed `ApiError`."""
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        try:
            async with self._http().request(
                method, self.server + path, params=params, data=data, headers=headers, timeout=REQUEST_TIMEOUT
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ConnectionFailed(0, "ConnectionFailed", f"{method} {path}: {err!r}") from err
        decoded = _decode(raw)
        if status >= 400:
            raise error_from_status(status, decoded)
        return decoded

    # -- verbs ---------------------------------------------------------------------------------

    def _ns(self, res: Resource, namespace: str | None) -> str | None:
        return namespace if res.namespaced else None

    async def get(
        self, res: Resource, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = await self.request("GET", res.path(self._ns(res, namespace), name, subresource))
        return out

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """The List object (items + metadata.resourceVersion); pages only when `limit` is given."""
        extra: dict[str, str] = {}
        if limit:
            extra["limit"] = str(limit)
        if continue_token:
            extra["continue"] = continue_token
        if resource_version is not None:
            extra["resourceVersion"] = resource_version
        params = _selector_params(label_selector, field_selector, extra)
        out: dict[str, Any] = await self.request("GET", res.path(self._ns(res, namespace)), params=params)
        return out

    async def list_all(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> dict[str, Any]:
        """Follows `continue` tokens; one List with every item and the first page's resourceVersion."""
        first = await self.list(
            res, namespace, label_selector=label_selector, field_selector=field_selector, limit=page_size
        )
        items = list(first.get("items") or [])
        token = (first.get("metadata") or {}).get("continue")
        while token:
            page = await self.list(
                res,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_token=token,
            )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
        first["items"] = items
        first.setdefault("metadata", {}).pop("continue", None)
        return first

    async def create(
        self,
        res: Resource,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """POST to the collection, or to `<name>/<subresource>` (e.g. `binding`, `eviction`)."""
        meta = obj.get("metadata") or {}
        ns = self._ns(res, namespace or meta.get("namespace"))
        path = res.path(ns, name or meta.get("name"), subresource) if subresource else res.path(ns)
        body = dict(obj)
        body.setdefault("apiVersion", res.group_version)
        body.setdefault("kind", res.kind)
        out: dict[str, Any] = await self.request("POST", path, body=body)
        return out

    async def update(self, res: Resource, obj: dict[str, Any], *, subresource: str | None = None) -> dict[str, Any]:
        """PUT; namespace and name come from the object (its resourceVersion guards the write)."""
        meta = obj.get("metadata") or {}
        path = res.path(self._ns(res, meta.get("namespace")), meta["name"], subresource)
        body = dict(obj)
        body.setdefault("apiVersion", res.group_version)
        body.setdefault("kind", res.kind)
        out: dict[str, Any] = await self.request("PUT", path, body=body)
        return out

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: dict[str, Any] | builtins.list[Any],
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        field_manager: str = "tinykube",
        force: bool = False,
    ) -> dict[str, Any]:
        params: dict[str, str] = {}
        if patch_type == "apply":
            params["fieldManager"] = field_manager
            if force:
                params["force"] = "true"
        out: dict[str, Any] = await self.request(
            "PATCH",
            res.path(self._ns(res, namespace), name, subresource),
            params=params or None,
            body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )
        return out

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """DELETE with DeleteOptions; returns the object (still terminating) or the Status."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = preconditions
        out: dict[str, Any] | None = await self.request(
            "DELETE", res.path(self._ns(res, namespace), name), body=options
        )
        return out

    def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        allow_bookmarks: bool = True,
        timeout_seconds: int | None = None,
    ) -> WatchStream:
        """An async iterator of `WatchEvent`s; an ERROR event is raised as its `ApiError` (410 → `Gone`)."""
        extra = {"watch": "1"}
        if resource_version is not None:
            extra["resourceVersion"] = resource_version
        if allow_bookmarks:
            extra["allowWatchBookmarks"] = "true"
        if timeout_seconds is not None:
            extra["timeoutSeconds"] = str(timeout_seconds)
        params = _selector_params(label_selector, field_selector, extra)
        return WatchStream(self, res.path(self._ns(res, namespace)), params)


class WatchStream:
    """One watch request. Use as `async for ev in stream` (closes at the end) or `async with`."""

    def __init__(self, client: KubeClient, path: str, params: dict[str, str]) -> None:
        self._client = client
        self._path = path
        self._params = params
        # The server ends a watch after timeoutSeconds; silence well past that means a dead peer.
        server_timeout = params.get("timeoutSeconds")
        sock_read = float(server_timeout) + 30 if server_timeout else None
        self._timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=sock_read)
        self._resp: aiohttp.ClientResponse | None = None
        self._buffer = b""
        self._lines: list[bytes] = []
        self._done = False

    async def _open(self) -> aiohttp.ClientResponse:
        if self._resp is None:
            try:
                resp = await self._client._http().get(
                    self._client.server + self._path,
                    params=self._params,
                    timeout=self._timeout,
                )
            except (aiohttp.ClientError, TimeoutError) as err:
                raise ConnectionFailed(0, "ConnectionFailed", f"watch {self._path}: {err!r}") from err
            if resp.status >= 400:
                raw = await resp.read()
                resp.release()
                raise error_from_status(resp.status, _decode(raw))
            self._resp = resp
        return self._resp

    async def _next_line(self) -> bytes | None:
        resp = await self._open()
        while not self._lines:
            try:
                chunk = await resp.content.readany()
            except (aiohttp.ClientError, TimeoutError) as err:
                raise ConnectionFailed(0, "ConnectionFailed", f"watch {self._path}: {err!r}") from err
            if not chunk:
                rest, self._buffer = self._buffer.strip(), b""
                return rest or None
            parts = (self._buffer + chunk).split(b"\n")
            self._buffer = parts.pop()
            self._lines = [p for p in parts if p.strip()]
        return self._lines.pop(0)

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        if self._done:
            raise StopAsyncIteration
        try:
            line = await self._next_line()
            if line is None:
                raise StopAsyncIteration
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as err:
                raise ApiError(0, "BadWatchEvent", f"undecodable watch line: {line[:200]!r}") from err
            etype, obj = str(doc.get("type", "")), doc.get("object") or {}
            if etype == "ERROR":
                raise error_from_status(int(obj.get("code") or 500), obj)
            return WatchEvent(etype, obj)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        self._done = True
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def wait_ready(client: KubeClient, *, timeout: float = 30.0) -> None:
    """Polls `/readyz` until the server answers 200 (for processes started alongside the server)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.request("GET", "/readyz")
            return
        except ApiError:
            if loop.time() > deadline:
                raise
        await asyncio.sleep(0.2)
