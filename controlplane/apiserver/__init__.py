"""The Kubernetes-compatible API server: HTTP edge (handlers), REST semantics (registry), watch cache.

Run it with `tinykube server` (controlplane/cli.py) or in-process with `start(ServerConfig(...))`;
tests of other components use controlplane/testing/server.py, which runs it as a subprocess."""

from controlplane.apiserver.server import RunningServer, ServerConfig, serve, start

__all__ = ["RunningServer", "ServerConfig", "serve", "start"]
