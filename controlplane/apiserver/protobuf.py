"""Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), decoded to
the JSON form the registry works on.

Why: kubectl's typed clients (`kubectl create namespace|configmap|secret|deployment|job|cronjob|
service|token|role…`, `kubectl drain`'s evictions) always send protobuf, and client-go has no fallback
to JSON for protobuf (only for CBOR). We answer in JSON, which those clients accept.

The envelope is the 4 bytes `k8s\\0` then a `runtime.Unknown` message {typeMeta=1 {apiVersion=1,
kind=2}, raw=2, contentEncoding=3, contentType=4}; `raw` is the object's own message. Only the kinds
and fields kubectl's generators write are described below (field numbers from the Kubernetes API's
protobuf definitions); unknown fields are skipped. Go's encoder writes every non-pointer field, so
empty strings, zero numbers and false are read as "unset" — except where a zero is meaningful
(`keep_zero`)."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    """The body is not a well-formed Kubernetes protobuf message (→ 400), or of a kind we cannot read (→ 415)."""


class UnsupportedKind(ProtobufError):
    pass


# -- wire format -----------------------------------------------------------------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for everything else."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value
        elif wire == 2:
            length, i = _varint(buf, i)
            if i + length > len(buf):
                raise ProtobufError("truncated length-delimited field")
            yield number, buf[i : i + length]
            i += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if i + size > len(buf):
                raise ProtobufError("truncated fixed field")
            yield number, buf[i : i + size]
            i += size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


# -- schema ----------------------------------------------------------------------------------------

Decoder = Callable[[int | bytes], Any]


@dataclass(frozen=True)
class F:
    name: str
    decode: Decoder
    repeated: bool = False
    keep_zero: bool = False  # a pointer field in Go: 0 / "" / false was set on purpose


@dataclass(frozen=True)
class Message:
    fields: dict[int, F] = field(default_factory=dict)

    def __call__(self, value: int | bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for number, raw in fields(_bytes(value)):
            spec = self.fields.get(number)
            if spec is None:
                continue
            decoded = spec.decode(raw)
            if spec.repeated:
                out.setdefault(spec.name, []).append(decoded)
            elif spec.keep_zero or decoded not in ("", 0, False, None, {}, []):
                if isinstance(decoded, dict) and isinstance(out.get(spec.name), dict):
                    out[spec.name].update(decoded)  # maps arrive one entry per field occurrence
                else:
                    out[spec.name] = decoded
        return out


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a length-delimited field")
    return value


def _str(value: int | bytes) -> str:
    try:
        return _bytes(value).decode()
    except UnicodeDecodeError as err:
        raise ProtobufError("invalid UTF-8 in a string field") from err


def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise ProtobufError("expected a varint field")
    return value - (1 << 64) if value >= 1 << 63 else value


def _bool(value: int | bytes) -> bool:
    return bool(_int(value))


def _map(value_decoder: Decoder) -> Decoder:
    """A map field: each occurrence is one entry {key=1, value=2}."""

    def decode(value: int | bytes) -> dict[str, Any]:
        key, val = "", value_decoder(b"")
        for number, raw in fields(_bytes(value)):
            if number == 1:
                key = _str(raw)
            elif number == 2:
                val = value_decoder(raw)
        return {key: val}

    return decode


def _b64(value: int | bytes) -> str:
    return base64.b64encode(_bytes(value)).decode()


def _quantity(value: int | bytes) -> str:
    return next((_str(raw) for n, raw in fields(_bytes(value)) if n == 1), "")


def _int_or_string(value: int | bytes) -> int | str:
    kind, number, text = 0, 0, ""
    for n, raw in fields(_bytes(value)):
        if n == 1:
            kind = _int(raw)
        elif n == 2:
            number = _int(raw)
        elif n == 3:
            text = _str(raw)
    return text if kind == 1 else number


def _time(value: int | bytes) -> str | None:
    seconds = next((_int(raw) for n, raw in fields(_bytes(value)) if n == 1), 0)
    if not seconds:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


STR, INT, BOOL = _str, _int, _bool
STRMAP = _map(_str)

OWNER_REFERENCE = Message(
    {
        1: F("kind", STR),
        3: F("name", STR),
        4: F("uid", STR),
        5: F("apiVersion", STR),
        6: F("controller", BOOL),
        7: F("blockOwnerDeletion", BOOL),
    }
)
OBJECT_META = Message(
    {
        1: F("name", STR),
        2: F("generateName", STR),
        3: F("namespace", STR),
        5: F("uid", STR),
        6: F("resourceVersion", STR),
        8: F("creationTimestamp", _time),
        11: F("labels", STRMAP),
        12: F("annotations", STRMAP),
        13: F("ownerReferences", OWNER_REFERENCE, repeated=True),
        14: F("finalizers", STR, repeated=True),
    }
)
LABEL_SELECTOR = Message(
    {
        1: F("matchLabels", STRMAP),
        2: F(
            "matchExpressions",
            Message({1: F("key", STR), 2: F("operator", STR), 3: F("values", STR, repeated=True)}),
            repeated=True,
        ),
    }
)
CONTAINER = Message(
    {
        1: F("name", STR),
        2: F("image", STR),
        3: F("command", STR, repeated=True),
        4: F("args", STR, repeated=True),
        5: F("workingDir", STR),
        6: F(
            "ports",
            Message(
                {
                    1: F("name", STR),
                    2: F("hostPort", INT),
                    3: F("containerPort", INT),
                    4: F("protocol", STR),
                    5: F("hostIP", STR),
                }
            ),
            repeated=True,
        ),
        7: F("env", Message({1: F("name", STR), 2: F("value", STR)}), repeated=True),
        8: F("resources", Message({1: F("limits", _map(_quantity)), 2: F("requests", _map(_quantity))})),
        14: F("imagePullPolicy", STR),
        16: F("stdin", BOOL),
        17: F("stdinOnce", BOOL),
        18: F("tty", BOOL),
    }
)
POD_SPEC = Message(
    {
        2: F("containers", CONTAINER, repeated=True),
        3: F("restartPolicy", STR),
        8: F("serviceAccountName", STR),
        20: F("initContainers", CONTAINER, repeated=True),
    }
)
POD_TEMPLATE = Message({1: F("metadata", OBJECT_META), 2: F("spec", POD_SPEC)})
JOB_SPEC = Message(
    {
        1: F("parallelism", INT, keep_zero=True),
        2: F("completions", INT, keep_zero=True),
        3: F("activeDeadlineSeconds", INT),
        6: F("template", POD_TEMPLATE),
        7: F("backoffLimit", INT, keep_zero=True),
    }
)
POLICY_RULE = Message(
    {
        1: F("verbs", STR, repeated=True),
        2: F("apiGroups", STR, repeated=True),
        3: F("resources", STR, repeated=True),
        4: F("resourceNames", STR, repeated=True),
        5: F("nonResourceURLs", STR, repeated=True),
    }
)
BINDING = Message(
    {
        1: F("metadata", OBJECT_META),
        2: F(
            "subjects",
            Message({1: F("kind", STR), 2: F("apiGroup", STR), 3: F("name", STR), 4: F("namespace", STR)}),
            repeated=True,
        ),
        3: F("roleRef", Message({1: F("apiGroup", STR), 2: F("kind", STR), 3: F("name", STR)})),
    }
)
ROLE = Message({1: F("metadata", OBJECT_META), 2: F("rules", POLICY_RULE, repeated=True)})
DELETE_OPTIONS = Message(
    {
        1: F("gracePeriodSeconds", INT, keep_zero=True),
        2: F("preconditions", Message({1: F("uid", STR), 2: F("resourceVersion", STR)})),
        3: F("orphanDependents", BOOL),
        4: F("propagationPolicy", STR),
        5: F("dryRun", STR, repeated=True),
    }
)

KINDS: dict[str, Message] = {
    "Namespace": Message(
        {1: F("metadata", OBJECT_META), 2: F("spec", Message({1: F("finalizers", STR, repeated=True)}))}
    ),
    "ConfigMap": Message(
        {1: F("metadata", OBJECT_META), 2: F("data", STRMAP), 3: F("binaryData", _map(_b64)), 4: F("immutable", BOOL)}
    ),
    "Secret": Message(
        {
            1: F("metadata", OBJECT_META),
            2: F("data", _map(_b64)),
            3: F("type", STR),
            4: F("stringData", STRMAP),
            5: F("immutable", BOOL),
        }
    ),
    "ServiceAccount": Message(
        {1: F("metadata", OBJECT_META), 4: F("automountServiceAccountToken", BOOL, keep_zero=True)}
    ),
    "Service": Message(
        {
            1: F("metadata", OBJECT_META),
            2: F(
                "spec",
                Message(
                    {
                        1: F(
                            "ports",
                            Message(
                                {
                                    1: F("name", STR),
                                    2: F("protocol", STR),
                                    3: F("port", INT),
                                    4: F("targetPort", _int_or_string),
                                    5: F("nodePort", INT),
                                    6: F("appProtocol", STR),
                                }
                            ),
                            repeated=True,
                        ),
                        2: F("selector", STRMAP),
                        3: F("clusterIP", STR),
                        4: F("type", STR),
                        10: F("externalName", STR),
                    }
                ),
            ),
        }
    ),
    "Deployment": Message(
        {
            1: F("metadata", OBJECT_META),
            2: F(
                "spec",
                Message(
                    {
                        1: F("replicas", INT, keep_zero=True),
                        2: F("selector", LABEL_SELECTOR),
                        3: F("template", POD_TEMPLATE),
                    }
                ),
            ),
        }
    ),
    "Job": Message({1: F("metadata", OBJECT_META), 2: F("spec", JOB_SPEC)}),
    "CronJob": Message(
        {
            1: F("metadata", OBJECT_META),
            2: F(
                "spec",
                Message(
                    {
                        1: F("schedule", STR),
                        5: F("jobTemplate", Message({1: F("metadata", OBJECT_META), 2: F("spec", JOB_SPEC)})),
                    }
                ),
            ),
        }
    ),
    "ResourceQuota": Message(
        {
            1: F("metadata", OBJECT_META),
            2: F("spec", Message({1: F("hard", _map(_quantity)), 2: F("scopes", STR, repeated=True)})),
        }
    ),
    "Role": ROLE,
    "ClusterRole": ROLE,
    "RoleBinding": BINDING,
    "ClusterRoleBinding": BINDING,
    "TokenRequest": Message(
        {
            1: F("metadata", OBJECT_META),
            2: F(
                "spec",
                Message(
                    {
                        1: F("audiences", STR, repeated=True),
                        4: F("expirationSeconds", INT),
                        3: F(
                            "boundObjectRef",
                            Message({1: F("kind", STR), 2: F("apiVersion", STR), 3: F("name", STR), 4: F("uid", STR)}),
                        ),
                    }
                ),
            ),
        }
    ),
    "SelfSubjectAccessReview": Message(
        {
            1: F("metadata", OBJECT_META),
            2: F(
                "spec",
                Message(
                    {
                        1: F(
                            "resourceAttributes",
                            Message(
                                {
                                    1: F("namespace", STR),
                                    2: F("verb", STR),
                                    3: F("group", STR),
                                    4: F("version", STR),
                                    5: F("resource", STR),
                                    6: F("subresource", STR),
                                    7: F("name", STR),
                                }
                            ),
                        ),
                        2: F("nonResourceAttributes", Message({1: F("path", STR), 2: F("verb", STR)})),
                    }
                ),
            ),
        }
    ),
    "SelfSubjectReview": Message({1: F("metadata", OBJECT_META)}),
    "Eviction": Message({1: F("metadata", OBJECT_META), 2: F("deleteOptions", DELETE_OPTIONS)}),
    "DeleteOptions": DELETE_OPTIONS,
}


def decode(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf request body → the object as JSON (apiVersion and kind included)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope prefix")
    api_version = kind = ""
    raw = b""
    for number, value in fields(body[len(MAGIC) :]):
        if number == 1:
            for n, v in fields(_bytes(value)):
                if n == 1:
                    api_version = _str(v)
                elif n == 2:
                    kind = _str(v)
        elif number == 2:
            raw = _bytes(value)
        elif number == 3 and value:
            raise UnsupportedKind("compressed protobuf bodies are not supported")
    schema = KINDS.get(kind)
    if schema is None:
        raise UnsupportedKind(f"protobuf bodies of kind {kind or '?'} are not supported; send JSON")
    obj = schema(raw)
    return {"apiVersion": api_version, "kind": kind, **obj}
