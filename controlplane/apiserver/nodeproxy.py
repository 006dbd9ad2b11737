"""pods/log, pods/exec, pods/attach and pods/portforward: proxied to the node agent running the pod
(contract 2), at the kubelet paths, over HTTPS with the API server's own client certificate.

The node's address comes from its Node object (`status.addresses`, InternalIP first) and port from
`status.daemonEndpoints.kubeletEndpoint.Port`. Like a kube-apiserver started without
`--kubelet-certificate-authority`, the node's serving certificate is not verified (nodes make their
own); the node authenticates us by our client certificate, issued by the cluster CA."""

from __future__ import annotations

import contextlib
import ssl
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from controlplane.apiserver.errors import BadRequest, NotFound, ServiceUnavailable
from controlplane.apiserver.keys import object_key
from controlplane.apiserver.registry import Registry
from controlplane.client.wsrelay import relay
from controlplane.pki import CertKey
from controlplane.resources import NODES

Obj = dict[str, Any]

# The streaming protocols kubectl offers, newest first; the node picks, we pass its choice on.
_LOG_PARAMS = ("follow", "previous", "tailLines", "timestamps", "sinceSeconds", "sinceTime", "limitBytes")
_STREAM_FLAGS = {"stdin": "input", "stdout": "output", "stderr": "error", "tty": "tty"}
_KUBELET_PATHS = {"exec": "exec", "attach": "attach", "portforward": "portForward"}


def node_endpoint(node: Obj) -> tuple[str, int]:
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    addresses = status.get("addresses") or []
    by_type = {a.get("type"): a.get("address") for a in addresses if isinstance(a, dict)}
    host = by_type.get("InternalIP") or by_type.get("ExternalIP") or by_type.get("Hostname")
    if not port or not host:
        raise ServiceUnavailable(f"node {node['metadata']['name']} publishes no kubelet endpoint")
    return str(host), int(port)


def container_name(pod: Obj, requested: str | None) -> str:
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    names += [c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []]
    if requested:
        if requested not in names:
            raise BadRequest(f"container {requested} is not valid for pod {pod['metadata']['name']}")
        return requested
    if len((pod.get("spec") or {}).get("containers") or []) == 1:
        return str(names[0])
    choices, name = " ".join(map(str, names)), pod["metadata"]["name"]
    raise BadRequest(f"a container name must be specified for pod {name}, choose one of: [{choices}]")


def kubelet_query(request: web.Request, subresource: str) -> str:
    q = request.query
    if subresource == "log":
        return urlencode([(k, q[k]) for k in _LOG_PARAMS if k in q])
    pairs: list[tuple[str, str]] = [("command", c) for c in q.getall("command", [])]
    for ours, theirs in _STREAM_FLAGS.items():
        if q.get(ours, "").lower() in ("1", "true"):
            pairs.append((theirs, "1"))
    pairs += [("port", p) for p in q.getall("ports", [])]
    return urlencode(pairs)


class NodeProxy:
    def __init__(self, registry: Registry, client: CertKey) -> None:
        self._registry = registry
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with tempfile.TemporaryDirectory() as d:
            crt, key = Path(d) / "c.crt", Path(d) / "c.key"
            crt.write_bytes(client.cert_pem)
            key.write_bytes(client.key_pem)
            ctx.load_cert_chain(crt, key)
        self._ssl = ctx

    def _node_url(self, pod: Obj, subresource: str, container: str) -> str:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise BadRequest(f"pod {pod['metadata']['name']} does not have a host assigned")
        entry = self._registry.cache.get(object_key(NODES, None, node_name))
        if entry is None:
            raise NotFound(f'nodes "{node_name}" not found', resource=NODES, name=node_name)
        host, port = node_endpoint(entry.obj)
        meta = pod["metadata"]
        ns, name = quote(meta["namespace"]), quote(meta["name"])
        host = f"[{host}]" if ":" in host else host
        if subresource == "log":
            return f"https://{host}:{port}/containerLogs/{ns}/{name}/{quote(container)}"
        if subresource == "portforward":
            return f"https://{host}:{port}/portForward/{ns}/{name}"
        return f"https://{host}:{port}/{_KUBELET_PATHS[subresource]}/{ns}/{name}/{quote(container)}"

    async def connect(self, request: web.Request, pod: Obj, subresource: str) -> web.StreamResponse:
        container = "" if subresource == "portforward" else container_name(pod, request.query.get("container"))
        url = self._node_url(pod, subresource, container)
        query = kubelet_query(request, subresource)
        if query:
            url += "?" + query
        if subresource == "log":
            return await self._stream_logs(request, url)
        return await self._websocket(request, url)

    async def _stream_logs(self, request: web.Request, url: str) -> web.StreamResponse:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                upstream = await session.get(url, ssl=self._ssl)
            except (aiohttp.ClientError, OSError) as err:
                raise ServiceUnavailable(f"cannot reach the node for logs: {err}") from err
            async with upstream:
                if upstream.status != 200:
                    text = await upstream.text()
                    err_cls = NotFound if upstream.status == 404 else BadRequest
                    raise err_cls(text.strip() or f"node answered {upstream.status}")
                resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
                await resp.prepare(request)
                with contextlib.suppress(ConnectionError):
                    async for chunk in upstream.content.iter_any():
                        await resp.write(chunk)
                with contextlib.suppress(ConnectionError):
                    await resp.write_eof()
                return resp

    async def _websocket(self, request: web.Request, url: str) -> web.StreamResponse:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise BadRequest("exec, attach and portforward need a WebSocket upgrade (SPDY is not supported)")
        async with aiohttp.ClientSession() as session:
            try:
                upstream = await session.ws_connect(url, protocols=offered, ssl=self._ssl, max_msg_size=0)
            except (aiohttp.ClientError, OSError) as err:
                raise ServiceUnavailable(f"cannot reach the node: {err}") from err
            async with upstream:
                chosen = upstream.protocol
                client = web.WebSocketResponse(protocols=[chosen] if chosen else (), max_msg_size=0)
                await client.prepare(request)
                await relay(client, upstream)
                return client
