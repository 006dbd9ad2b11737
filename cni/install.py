"""Install the plugin executables and the default network configuration on a node.

The executables are tiny scripts run by the venv's interpreter with `-IS` (a shebang passes one
argument; it means `-I -S`: ~6 ms start, no site import). The package location is put on `sys.path`
explicitly, and the agent socket path is baked in.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from cni.registry import BRIDGE, HOST_LOCAL, PLUGIN_TYPES

CONFLIST_NAME = "10-tinykube.conflist"
DEFAULT_AGENT_SOCKET = "/run/tinykube/cni.sock"
DEFAULT_DATA_DIR = "/var/lib/cni/networks"
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def executable_text(plugin_type: str, *, agent_socket: str, python: str = sys.executable) -> str:
    return (
        f"#!{python} -IS\n"
        f"# {plugin_type}: tinykube CNI plugin (CNI spec 1.0/1.1); see cni/exe.py\n"
        "import sys\n"
        f"sys.path.insert(0, {PACKAGE_ROOT!r})\n"
        "from cni.exe import main\n"
        f"sys.exit(main({plugin_type!r}, {agent_socket!r}))\n"
    )


def conflist(
    *,
    pod_cidr: str,
    bridge: str = "cni0",
    network_name: str = "tinykube",
    data_dir: str = DEFAULT_DATA_DIR,
    ip_masq: bool = True,
) -> dict[str, Any]:
    """The default network: our bridge (gateway on the bridge, default route, hairpin) + host-local."""
    return {
        "cniVersion": "1.0.0",
        "cniVersions": ["1.0.0", "1.1.0"],
        "name": network_name,
        "plugins": [
            {
                "type": BRIDGE,
                "bridge": bridge,
                "isGateway": True,
                "isDefaultGateway": True,
                "hairpinMode": True,
                "ipMasq": ip_masq,
                "ipam": {"type": HOST_LOCAL, "ranges": [[{"subnet": pod_cidr}]], "dataDir": data_dir},
            }
        ],
    }


def _write_atomic(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def install(
    bin_dir: str | os.PathLike[str],
    conf_dir: str | os.PathLike[str],
    *,
    pod_cidr: str,
    bridge: str = "cni0",
    network_name: str = "tinykube",
    agent_socket: str = DEFAULT_AGENT_SOCKET,
    data_dir: str = DEFAULT_DATA_DIR,
    ip_masq: bool = True,
) -> Path:
    """Write `tinykube-bridge`, `tinykube-host-local` and `10-tinykube.conflist`; returns the conflist path."""
    bins, confs = Path(bin_dir), Path(conf_dir)
    bins.mkdir(parents=True, exist_ok=True)
    confs.mkdir(parents=True, exist_ok=True)
    for plugin_type in PLUGIN_TYPES:
        _write_atomic(bins / plugin_type, executable_text(plugin_type, agent_socket=agent_socket), 0o755)
    doc = conflist(pod_cidr=pod_cidr, bridge=bridge, network_name=network_name, data_dir=data_dir, ip_masq=ip_masq)
    target = confs / CONFLIST_NAME
    _write_atomic(target, json.dumps(doc, indent=2) + "\n", 0o644)
    return target
