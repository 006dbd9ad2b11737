"""noded: the node agent (the kubelet of tinykube).

`cli` wires it together: `node.NodeAgent` registers the Node and renews its Lease; `manager.PodManager`
runs one `worker.PodWorker` per pod against a `interfaces.RuntimeClient` (gRPC CRI in `cri_client`, a
stateful fake in `testing`); `server.NodeServer` serves the kubelet paths (logs, exec, stats); `static`
runs manifests from a directory with mirror pods. The gRPC client is not re-exported here so that
importing noded's logic does not import grpc.
"""

from noded.errors import NodedError, PodSpecError, RuntimeError_, RuntimeNotFound, RuntimeUnavailable
from noded.interfaces import ApiClient, RuntimeClient
from noded.manager import PodManager
from noded.node import NodeAgent, NodeConfig
from noded.worker import NodeContext, PodWorker

__all__ = [
    "ApiClient",
    "NodeAgent",
    "NodeConfig",
    "NodeContext",
    "NodedError",
    "PodManager",
    "PodSpecError",
    "PodWorker",
    "RuntimeClient",
    "RuntimeError_",
    "RuntimeNotFound",
    "RuntimeUnavailable",
]
