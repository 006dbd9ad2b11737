"""Async Kubernetes API client shared by the controllers, noded and netproxy (contract 3)."""

from controlplane.client.client import KubeClient, WatchStream, wait_ready
from controlplane.client.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    ClientError,
    ConfigError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from controlplane.client.informer import Informer
from controlplane.client.kubeconfig import Credentials, load_kubeconfig
from controlplane.client.types import WatchEvent, object_key, split_key
from controlplane.client.workqueue import RateLimitedQueue, ShutDown

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "ClientError",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "Credentials",
    "Forbidden",
    "Gone",
    "Informer",
    "Invalid",
    "KubeClient",
    "MethodNotAllowed",
    "NotFound",
    "RateLimitedQueue",
    "ServerError",
    "ShutDown",
    "TooManyRequests",
    "Unauthorized",
    "WatchEvent",
    "WatchStream",
    "load_kubeconfig",
    "object_key",
    "split_key",
    "wait_ready",
]
