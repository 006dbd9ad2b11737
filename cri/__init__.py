"""tinykube's container runtime: Kubernetes CRI `runtime.v1` over gRPC (`tinykube cri`).

Daemon side (threads allowed): `cli` → `server` (gRPC edge, error mapping) → `runtime` →
`sandbox` / `container` (lifecycle, rollback) with `store` (records on disk), `validate` (CRI → specs),
`network` (CNI), `cgroups` (v1/v2 drivers), `streaming` (Exec/PortForward WebSocket server).
Child side (single-threaded, forked by `launcher`): `pause` (namespace holder), `monitor` (logs and
exit records), `init` + `rootfs` (namespaces, mounts, identity, `caps`, `seccomp`), via `linux`.

Nothing is imported here: the launcher's children stay light and `import cri.x` stays cheap.
"""

__all__: list[str] = []
