"""The store's layer directories work as overlayfs lower dirs: the built busybox runs `/bin/sh`
in a chroot, and OCI whiteouts/opaque dirs hide lower-layer content once mounted."""

import os

import pytest

from cri.images import ImageStore
from cri.images.builtin import BUSYBOX_BINARY, LayerEntry, build_layer
from cri.images.testing.builders import build_image, oci_layout_tar

pytestmark = pytest.mark.skipif(not os.path.exists(BUSYBOX_BINARY), reason="needs Debian's busybox-static")


def _overlay_script(tmp_path, layers, then):
    """Shell that mounts `layers` (bottom first) as an overlay at tmp_path/merged, then runs `then`."""
    for d in ("upper", "work", "merged"):
        (tmp_path / d).mkdir()
    lowerdir = ":".join(reversed(layers))  # overlayfs lists the top layer first
    return (
        f"set -e; mount -t overlay overlay -o lowerdir={lowerdir},upperdir={tmp_path}/upper,"
        f"workdir={tmp_path}/work {tmp_path}/merged; {then}"
    )


def test_busybox_overlay_runs_sh_in_a_chroot(tmp_path, private_mounts):
    store = ImageStore(str(tmp_path / "store"))
    store.ensure_builtin()
    layers = store.layers("busybox")
    merged = tmp_path / "merged"
    script = _overlay_script(
        tmp_path,
        layers,
        f"chroot {merged} /bin/sh -c 'echo hi; id -un; wget --help >/dev/null 2>&1 && echo applets;"
        f" echo data > /tmp/written'",
    )
    result = private_mounts(["sh", "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["hi", "root", "applets"]
    assert (tmp_path / "upper/tmp/written").read_text() == "data\n"  # writes land in upperdir
    assert not os.path.exists(os.path.join(layers[0], "tmp/written"))  # the shared layer is untouched
    assert not os.path.ismount(merged)  # the mount died with its namespace


def test_whiteouts_and_opaque_dirs_hide_lower_layer_content(tmp_path, private_mounts):
    lower = build_layer(
        [
            LayerEntry("etc", "dir"),
            LayerEntry("etc/keep", "file", data=b"k"),
            LayerEntry("etc/gone", "file", data=b"g"),
            LayerEntry("cache", "dir"),
            LayerEntry("cache/old1", "file", data=b"1"),
            LayerEntry("cache/old2", "file", data=b"2"),
        ]
    )
    upper = build_layer(
        [
            LayerEntry("etc", "dir"),
            LayerEntry("etc/.wh.gone", "file"),
            LayerEntry("cache", "dir"),
            LayerEntry("cache/.wh..wh..opq", "file"),
            LayerEntry("cache/new", "file", data=b"n"),
        ]
    )
    archive = str(tmp_path / "wh.tar")
    oci_layout_tar(archive, {"example.com/wh:1": build_image([lower, upper], gzip_layers=True)})
    store = ImageStore(str(tmp_path / "store"))
    store.import_archive(archive)
    layers = store.layers("example.com/wh:1")
    top = layers[1]
    st = os.lstat(os.path.join(top, "etc/gone"))
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (0, 0)
    assert os.getxattr(os.path.join(top, "cache"), "trusted.overlay.opaque") == b"y"
    merged = tmp_path / "merged"
    script = _overlay_script(tmp_path, layers, f"ls -A {merged}/etc; echo --; ls -A {merged}/cache")
    result = private_mounts(["sh", "-c", script])
    assert result.returncode == 0, result.stderr
    etc, cache = result.stdout.split("--")
    assert etc.split() == ["keep"]
    assert cache.split() == ["new"]
