"""The `Backend` on etcd v3, over gRPC with messages from our own `etcd_proto/etcd_rpc.proto`.

Why no client library: the six calls we need (Range, Put-in-Txn, DeleteRange-in-Txn, Compact, Watch,
Status) are a small, stable wire API, grpcio is already a dependency, and the maintained async
Python clients pin old grpcio/protobuf. The stubs are compiled from the .proto when this module is
first used (`grpc.protos_and_services`, i.e. grpcio-tools' protoc in-process, ~50 ms): nothing is
generated into the tree, so there is no build step to forget and nothing to exclude from linting.

Mapping (etcd revisions are already global and monotonic, exactly the interface's model):
- create = Txn(if create_revision(key) == 0 then Put else Range) — KeyExists when the compare fails.
- update/delete = Txn(if mod_revision(key) == expected (or create_revision > 0) then Put/Delete
  else Range) — the failure branch's Range tells KeyNotFound from RevisionConflict in one round trip.
- watch = one Watch stream per call with prev_kv, so DELETED events carry the last value.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from controlplane.storage.interface import (
    Backend,
    BackendUnavailable,
    Compacted,
    CountResult,
    EventType,
    GetResult,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionConflict,
    StorageError,
    StoreEvent,
)

__all__ = ["EtcdBackend", "prefix_end"]

_PROTO_DIR = Path(__file__).parent / "etcd_proto"
_CALL_TIMEOUT = 15.0
_MAX_MESSAGE = 64 * 1024 * 1024  # lists of many objects come back in one RangeResponse


@functools.cache
def _proto() -> tuple[Any, Any]:
    """(messages module, services module), compiled once per process."""
    sys.path.insert(0, str(_PROTO_DIR))
    try:
        return grpc.protos_and_services("etcd_rpc.proto")  # type: ignore[no-any-return]
    finally:
        sys.path.remove(str(_PROTO_DIR))


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix` (etcd's range_end for a
    prefix): increment the last byte below 0xff and drop what follows; b"\\0" means "to the end"."""
    buf = bytearray(prefix)
    for i in range(len(buf) - 1, -1, -1):
        if buf[i] < 0xFF:
            buf[i] += 1
            return bytes(buf[: i + 1])
    return b"\0"


def _host_port(endpoint: str) -> str:
    for scheme in ("http://", "https://"):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme) :].rstrip("/")
    return endpoint


def _target(endpoints: list[str]) -> str:
    """One gRPC target for all endpoints: with IPv4 addresses, gRPC's `ipv4:` resolver lists them
    all and pick_first fails over to the next member when one is down; otherwise the first endpoint."""
    addresses = [_host_port(e) for e in endpoints]
    hosts = [a.rsplit(":", 1)[0] for a in addresses]
    if len(addresses) > 1 and all(h.replace(".", "").isdigit() and h.count(".") == 3 for h in hosts):
        return "ipv4:" + ",".join(addresses)
    return addresses[0]


def _kv(pb_kv: Any) -> KeyValue:
    return KeyValue(pb_kv.key.decode(), bytes(pb_kv.value), pb_kv.create_revision, pb_kv.mod_revision)


def _translate(err: grpc.aio.AioRpcError, *, requested: int = 0) -> StorageError:
    details = err.details() or ""
    if "compacted" in details:
        return Compacted(requested, 0)
    if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return BackendUnavailable(f"etcd: {err.code().name}: {details}")
    return StorageError(f"etcd: {err.code().name}: {details}")


class EtcdBackend:
    """`endpoints` like "http://127.0.0.1:2379"; any member serves (etcd forwards writes to the leader)."""

    def __init__(self, endpoints: list[str] | str, *, connect_timeout: float = 10.0) -> None:
        eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        if not eps:
            raise ValueError("at least one etcd endpoint is required")
        self._target = _target(eps)
        self._connect_timeout = connect_timeout
        self._channel: grpc.aio.Channel | None = None
        self._kv_stub: Any = None
        self._watch_stub: Any = None
        self._pb: Any = None

    async def start(self) -> None:
        self._pb, services = _proto()
        self._channel = grpc.aio.insecure_channel(
            self._target,
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ],
        )
        self._kv_stub = services.KVStub(self._channel)
        self._watch_stub = services.WatchStub(self._channel)
        status_stub = services.MaintenanceStub(self._channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        while True:
            try:
                await status_stub.Status(self._pb.StatusRequest(), timeout=2.0)
                return
            except grpc.aio.AioRpcError as err:
                if loop.time() >= deadline:
                    await self.close()
                    raise BackendUnavailable(f"etcd at {self._target} is not reachable: {err.details()}") from err
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    def _stub(self) -> Any:
        if self._channel is None:
            raise BackendUnavailable("etcd backend is closed")
        return self._kv_stub

    async def _call(self, method: str, request: Any, *, requested: int = 0) -> Any:
        try:
            return await getattr(self._stub(), method)(request, timeout=_CALL_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            raise _translate(err, requested=requested) from err
        except asyncio.CancelledError:
            raise
        except RuntimeError as err:  # a call on a channel closed under it
            raise BackendUnavailable(str(err)) from err

    async def current_revision(self) -> int:
        resp = await self._call("Range", self._pb.RangeRequest(key=b"\0", count_only=True))
        return int(resp.header.revision)

    async def get(self, key: str) -> GetResult:
        resp = await self._call("Range", self._pb.RangeRequest(key=key.encode()))
        return GetResult(int(resp.header.revision), _kv(resp.kvs[0]) if resp.kvs else None)

    def _compare(self, key: bytes, expected_revision: int | None) -> Any:
        pb = self._pb
        if expected_revision is None:
            return pb.Compare(key=key, target=pb.Compare.CREATE, result=pb.Compare.GREATER, create_revision=0)
        return pb.Compare(key=key, target=pb.Compare.MOD, result=pb.Compare.EQUAL, mod_revision=expected_revision)

    async def _txn(self, key: str, compare: Any, op: Any, expected_revision: int | None) -> Any:
        pb = self._pb
        raw = key.encode()
        resp = await self._call(
            "Txn",
            pb.TxnRequest(
                compare=[compare], success=[op], failure=[pb.RequestOp(request_range=pb.RangeRequest(key=raw))]
            ),
        )
        if resp.succeeded:
            return resp
        found = resp.responses[0].response_range.kvs if resp.responses else []
        if not found:
            raise KeyNotFound(key)
        raise RevisionConflict(key, expected_revision or 0, int(found[0].mod_revision))

    async def create(self, key: str, value: bytes) -> int:
        pb = self._pb
        raw = key.encode()
        resp = await self._call(
            "Txn",
            pb.TxnRequest(
                compare=[pb.Compare(key=raw, target=pb.Compare.CREATE, result=pb.Compare.EQUAL, create_revision=0)],
                success=[pb.RequestOp(request_put=pb.PutRequest(key=raw, value=value))],
            ),
        )
        if not resp.succeeded:
            raise KeyExists(key)
        return int(resp.header.revision)

    async def update(self, key: str, value: bytes, *, expected_revision: int | None = None) -> int:
        raw = key.encode()
        op = self._pb.RequestOp(request_put=self._pb.PutRequest(key=raw, value=value))
        resp = await self._txn(key, self._compare(raw, expected_revision), op, expected_revision)
        return int(resp.header.revision)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> int:
        raw = key.encode()
        op = self._pb.RequestOp(request_delete_range=self._pb.DeleteRangeRequest(key=raw))
        resp = await self._txn(key, self._compare(raw, expected_revision), op, expected_revision)
        return int(resp.header.revision)

    async def list(self, prefix: str, *, revision: int = 0, start_after: str = "", limit: int = 0) -> ListResult:
        raw = prefix.encode()
        start = start_after.encode() + b"\0" if start_after and start_after >= prefix else raw
        request = self._pb.RangeRequest(key=start, range_end=prefix_end(raw), limit=limit, revision=revision)
        resp = await self._call("Range", request, requested=revision)
        return ListResult(revision or int(resp.header.revision), [_kv(kv) for kv in resp.kvs], bool(resp.more))

    async def count(self, prefix: str) -> CountResult:
        raw = prefix.encode()
        resp = await self._call("Range", self._pb.RangeRequest(key=raw, range_end=prefix_end(raw), count_only=True))
        return CountResult(int(resp.header.revision), int(resp.count))

    def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[StoreEvent]:
        self._stub()
        return self._watch(prefix, start_revision)

    async def _watch(self, prefix: str, start_revision: int) -> AsyncIterator[StoreEvent]:
        pb = self._pb
        raw = prefix.encode()
        call = self._watch_stub.Watch()
        try:
            create = pb.WatchCreateRequest(
                key=raw, range_end=prefix_end(raw), start_revision=start_revision, prev_kv=True
            )
            await call.write(pb.WatchRequest(create_request=create))
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    raise BackendUnavailable("etcd closed the watch stream")
                if resp.compact_revision:
                    raise Compacted(start_revision, int(resp.compact_revision))
                if resp.canceled:
                    raise BackendUnavailable(f"etcd canceled the watch: {resp.cancel_reason}")
                for ev in resp.events:
                    yield _event(pb, ev)
        except grpc.aio.AioRpcError as err:
            raise _translate(err, requested=start_revision) from err
        finally:
            call.cancel()

    async def compact(self, revision: int) -> int:
        current = await self.current_revision()
        target = min(revision, current)
        try:
            await self._stub().Compact(self._pb.CompactionRequest(revision=target), timeout=_CALL_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            if "compacted" not in (err.details() or ""):
                raise _translate(err) from err
        return target


def _event(pb: Any, ev: Any) -> StoreEvent:
    prev = _kv(ev.prev_kv) if ev.HasField("prev_kv") else None
    if ev.type == pb.Event.DELETE:
        # etcd's DELETE carries an empty value; the interface wants the last value at the delete's revision.
        last = prev or KeyValue(ev.kv.key.decode(), b"", 0, 0)
        kv = KeyValue(last.key, last.value, last.create_revision, int(ev.kv.mod_revision))
        return StoreEvent(EventType.DELETED, kv, prev)
    kv = _kv(ev.kv)
    kind = EventType.CREATED if ev.kv.create_revision == ev.kv.mod_revision else EventType.UPDATED
    return StoreEvent(kind, kv, prev)


_: type[Backend] = EtcdBackend
