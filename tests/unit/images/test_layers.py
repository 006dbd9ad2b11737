import gzip
import io
import os

import pytest

from cri.images import DigestMismatch, InvalidImage
from cri.images.builtin import LayerEntry, build_layer
from cri.images.layers import Entry, classify, clean_path, unpack_layer
from cri.images.manifest import sha256_digest
from cri.images.testing.fakes import RecordingWhiteouts


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("etc/passwd", Entry("file", "etc/passwd")),
        ("./etc/passwd", Entry("file", "etc/passwd")),
        ("/etc/", Entry("file", "etc")),
        ("etc/.wh.passwd", Entry("whiteout", "etc/passwd")),
        (".wh.tmp", Entry("whiteout", "tmp")),
        ("var/cache/.wh..wh..opq", Entry("opaque", "var/cache")),
        (".wh..wh..opq", Entry("opaque", ".")),
        ("x/.wh..wh.plnk", Entry("ignore", "x/.wh..wh.plnk")),
        ("a/../b", Entry("file", "b")),
    ],
)
def test_classify_maps_oci_whiteout_names(name, entry):
    assert classify(name) == entry


@pytest.mark.parametrize("name", ["../etc/passwd", "a/../../b", "/.."])
def test_paths_escaping_the_layer_are_rejected(name):
    with pytest.raises(InvalidImage, match="outside the layer"):
        clean_path(name)


def _unpack(tmp_path, entries, *, compress=False, expected=""):
    tar = build_layer(entries)
    blob = gzip.compress(tar) if compress else tar
    dest = tmp_path / "layer"
    dest.mkdir()
    wo = RecordingWhiteouts()
    diff_id = unpack_layer(io.BytesIO(blob), str(dest), whiteouts=wo, expected_diff_id=expected)
    return dest, wo, diff_id, tar


def test_unpack_converts_whiteouts_and_opaque_dirs(tmp_path):
    dest, wo, _, _ = _unpack(
        tmp_path,
        [
            LayerEntry("etc", "dir"),
            LayerEntry("etc/.wh.motd", "file"),
            LayerEntry("var", "dir"),
            LayerEntry("var/cache", "dir"),
            LayerEntry("var/cache/.wh..wh..opq", "file"),
            LayerEntry("var/cache/new", "file", 0o600, data=b"n"),
        ],
    )
    assert wo.whiteouts == {str(dest / "etc/motd")}
    assert wo.opaque_dirs == {str(dest / "var/cache")}
    assert not (dest / "etc/.wh.motd").exists()
    assert not (dest / "var/cache/.wh..wh..opq").exists()
    assert (dest / "var/cache/new").read_bytes() == b"n"
    assert (dest / "var/cache/new").stat().st_mode & 0o777 == 0o600


def test_unpack_returns_diff_id_of_uncompressed_tar_for_gzip_blob(tmp_path):
    entries = [LayerEntry("bin", "dir"), LayerEntry("bin/tool", "file", 0o755, data=b"#!/bin/sh\n")]
    dest, _, diff_id, tar = _unpack(tmp_path, entries, compress=True)
    assert diff_id == sha256_digest(tar)
    assert os.access(dest / "bin/tool", os.X_OK)


def test_unpack_detects_wrong_diff_id(tmp_path):
    with pytest.raises(DigestMismatch, match="diff_id"):
        _unpack(tmp_path, [LayerEntry("a", "file", data=b"x")], expected="sha256:" + "0" * 64)


def test_symlinks_and_hardlinks_inside_the_layer_are_kept(tmp_path):
    dest, _, _, _ = _unpack(
        tmp_path,
        [
            LayerEntry("bin", "dir"),
            LayerEntry("bin/busybox", "file", 0o755, data=b"BB"),
            LayerEntry("bin/sh", "symlink", target="/bin/busybox"),
            LayerEntry("bin/ash", "hardlink", target="bin/busybox"),
        ],
    )
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert (dest / "bin/ash").stat().st_ino == (dest / "bin/busybox").stat().st_ino


def test_writing_through_a_symlink_made_by_the_layer_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(InvalidImage, match="below symlink"):
        _unpack(
            tmp_path,
            [LayerEntry("evil", "symlink", target=str(outside)), LayerEntry("evil/pwned", "file", data=b"x")],
        )
    assert list(outside.iterdir()) == []


def test_hardlink_to_a_file_outside_the_layer_is_refused(tmp_path):
    with pytest.raises(InvalidImage, match="not in this layer"):
        _unpack(tmp_path, [LayerEntry("passwd", "hardlink", target="etc/passwd")])


def test_later_entry_replaces_earlier_one_even_across_types(tmp_path):
    dest, _, _, _ = _unpack(
        tmp_path,
        [
            LayerEntry("x", "dir"),
            LayerEntry("x/inner", "file", data=b"1"),
            LayerEntry("x", "file", data=b"now a file"),
            LayerEntry("y", "symlink", target="/nowhere"),
            LayerEntry("y", "file", data=b"not written through the link"),
        ],
    )
    assert (dest / "x").read_bytes() == b"now a file"
    assert not (dest / "y").is_symlink()
    assert (dest / "y").read_bytes() == b"not written through the link"


def test_garbage_is_not_a_layer(tmp_path):
    dest = tmp_path / "l"
    dest.mkdir()
    with pytest.raises(InvalidImage, match="not a valid tar"):
        unpack_layer(io.BytesIO(b"\x1f\x8bnot really gzip" * 40), str(dest), whiteouts=RecordingWhiteouts())
