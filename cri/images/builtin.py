"""Images built on this machine with no network: busybox (from Debian's busybox-static) and pause.

Each is a real single-layer OCI image (uncompressed tar layer, config, manifest) in the store, so the
runtime treats it like any pulled image. Layers are built deterministically (sorted entries, mtime
0, uid/gid 0): the same busybox binary always gives the same image id. A stamp (`builtin.json`)
records which busybox binary was used, so the second call costs a stat and a small JSON read.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cri.images.manifest import host_platform, render_manifest
from cri.images.pause_elf import pause_elf
from cri.images.types import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, Image

if TYPE_CHECKING:
    from cri.images.store import ImageStore

BUSYBOX_REF = "docker.io/library/busybox:latest"
PAUSE_REF = "registry.k8s.io/pause:3.10"
BUSYBOX_BINARY = "/bin/busybox"
BUSYBOX_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"
STAMP = "builtin.json"
_EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class LayerEntry:
    path: str
    kind: str  # "dir", "file", "symlink" or "hardlink" (target: the linked path inside the layer)
    mode: int = 0o755
    data: bytes = b""
    target: str = ""


def build_layer(nodes: Iterable[LayerEntry]) -> bytes:
    """A reproducible tar of `nodes`, in the order given (parents first, hard links after targets)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for node in nodes:
            info = tarfile.TarInfo(node.path)
            info.mode = node.mode
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if node.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif node.kind in ("symlink", "hardlink"):
                info.type = tarfile.SYMTYPE if node.kind == "symlink" else tarfile.LNKTYPE
                info.linkname = node.target
                tar.addfile(info)
            else:
                info.size = len(node.data)
                tar.addfile(info, io.BytesIO(node.data))
    return buf.getvalue()


def applet_paths(binary: str = BUSYBOX_BINARY) -> list[str]:
    """Where `busybox --install -s` would put each applet, e.g. `bin/sh`, `usr/bin/awk`."""
    out = subprocess.run([binary, "--list-full"], capture_output=True, text=True, check=True, timeout=10).stdout
    return sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})


def busybox_nodes(binary_data: bytes, applets: Iterable[str]) -> list[LayerEntry]:
    dirs = {"bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "tmp", "usr", "usr/bin", "usr/sbin", "var"}
    nodes = {
        "bin/busybox": LayerEntry("bin/busybox", "file", 0o755, data=binary_data),
        "etc/passwd": LayerEntry("etc/passwd", "file", 0o644, data=PASSWD.encode()),
        "etc/group": LayerEntry("etc/group", "file", 0o644, data=GROUP.encode()),
    }
    for applet in applets:
        if applet not in nodes:
            nodes[applet] = LayerEntry(applet, "symlink", 0o777, target="/" + BUSYBOX_BINARY.lstrip("/"))
            parent = os.path.dirname(applet)
            while parent:
                dirs.add(parent)
                parent = os.path.dirname(parent)
    modes = {"tmp": 0o1777, "root": 0o700}
    return [*nodes.values(), *(LayerEntry(d, "dir", modes.get(d, 0o755)) for d in dirs)]


def image_config(diff_id: str, config: dict[str, object], created_by: str) -> bytes:
    plat = host_platform()
    doc = {
        "architecture": plat.architecture,
        "os": plat.os,
        "created": _EPOCH,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": _EPOCH, "created_by": created_by}],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _add_image(
    store: ImageStore, ref: str, layer: bytes, config: dict[str, object], *, created_by: str, pinned: bool
) -> Image:
    layer_digest = store.blobs.write(layer)
    config_blob = image_config(layer_digest, config, created_by)  # uncompressed: diff_id == blob digest
    config_digest = store.blobs.write(config_blob)
    manifest = render_manifest(
        Descriptor(OCI_CONFIG, config_digest, len(config_blob)),
        [Descriptor(OCI_LAYER, layer_digest, len(layer))],
    )
    manifest_digest = store.blobs.write(manifest)
    with store.holding([layer_digest, config_digest, manifest_digest]):
        return store.commit([ref], manifest_digest, pinned=pinned)


def _signature(binary: str) -> list[object]:
    st = os.stat(binary)
    return [binary, st.st_size, st.st_mtime_ns, st.st_ino, OCI_MANIFEST]


def ensure_builtin(store: ImageStore, *, busybox: str = BUSYBOX_BINARY) -> list[Image]:
    """Make sure the busybox and pause images exist; rebuild only if busybox changed or they are gone."""
    stamp_path = os.path.join(store.root, STAMP)
    signature = _signature(busybox)
    try:
        with open(stamp_path, "rb") as f:
            stamp = json.load(f)
    except (FileNotFoundError, ValueError):
        stamp = {}
    if stamp.get("signature") == signature:
        # A present name is kept even if it was re-pulled from a registry since: the user's choice.
        images = [image for ref in (BUSYBOX_REF, PAUSE_REF) if (image := store.status(ref)) is not None]
        if len(images) == 2:
            for image in images:
                store.layers(image.id)  # re-unpacks a layer directory someone deleted
            return images
    with open(busybox, "rb") as f:
        binary_data = f.read()
    box = _add_image(
        store,
        BUSYBOX_REF,
        build_layer(sorted(busybox_nodes(binary_data, applet_paths(busybox)), key=lambda n: n.path)),
        {"Env": [BUSYBOX_PATH_ENV], "Cmd": ["sh"]},
        created_by=f"tinykube ensure_builtin: {busybox} with every applet linked",
        pinned=False,
    )
    pause_layer = build_layer([LayerEntry("pause", "file", 0o755, data=pause_elf())])
    pause = _add_image(
        store,
        PAUSE_REF,
        pause_layer,
        {"Entrypoint": ["/pause"], "User": "65535:65535"},
        created_by="tinykube ensure_builtin: pause",
        pinned=True,
    )
    tmp = store.blobs.temp_path("stamp")
    with open(tmp, "w") as f:
        json.dump({"signature": signature, BUSYBOX_REF: box.manifest_digest, PAUSE_REF: pause.manifest_digest}, f)
    os.replace(tmp, stamp_path)
    return [box, pause]
