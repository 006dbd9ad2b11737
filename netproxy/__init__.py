"""netproxy: the Service proxy of tinykube (issue 9). Desired-state model and change trackers shared by
every backend; pure renderers for iptables and nftables; a thin kernel-facing layer."""

from netproxy.config import ProxyConfig
from netproxy.errors import ApplyError, InvalidObject, NetproxyError
from netproxy.model import DesiredState, Endpoint, EndpointSelection, ServicePort, ServicePortName, select_endpoints
from netproxy.proxier import Proxier, SyncResult
from netproxy.tracker import EndpointsChangeTracker, ServiceChangeTracker, StateUpdate, take_changes

__all__ = [
    "ApplyError",
    "DesiredState",
    "Endpoint",
    "EndpointSelection",
    "EndpointsChangeTracker",
    "InvalidObject",
    "NetproxyError",
    "Proxier",
    "ProxyConfig",
    "ServiceChangeTracker",
    "ServicePort",
    "ServicePortName",
    "StateUpdate",
    "SyncResult",
    "select_endpoints",
    "take_changes",
]
