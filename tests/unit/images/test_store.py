import gzip
import os
import shutil
import time
from pathlib import Path

import pytest

from cri.images import ImageNotFound, ImageStore, InvalidImage
from cri.images.builtin import BUSYBOX_BINARY, BUSYBOX_REF, PAUSE_REF
from cri.images.testing.builders import build_image, build_index, docker_save_tar, file_layer, oci_layout_tar
from cri.images.testing.fakes import RecordingWhiteouts

BASE = file_layer({"etc/os-release": b"ID=test\n", "bin/app": b"app"})
APP1 = file_layer({"srv/one": b"1"})
APP2 = file_layer({"srv/two": b"2"})


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "store"), whiteouts=RecordingWhiteouts())


def _layer_names(store):
    return sorted(os.listdir(store.layers_dir))


def test_import_oci_layout_names_and_unpacks_the_image(store, tmp_path):
    image = build_image([BASE, APP1], config={"Entrypoint": ["/bin/app"], "Env": ["A=1"]}, gzip_layers=True)
    archive = str(tmp_path / "oci.tar")
    oci_layout_tar(archive, {"example.com/app:1": image})
    [imported] = store.import_archive(archive)
    assert imported.id == image.config_digest
    assert imported.repo_tags == ("example.com/app:1",)
    assert imported.repo_digests == (f"example.com/app@{image.manifest_digest}",)
    assert imported.size == len(image.config) + sum(len(b) for b in image.layers)
    assert store.config("example.com/app:1").entrypoint == ("/bin/app",)
    bottom, top = store.layers("example.com/app:1")
    assert Path(os.path.join(bottom, "etc/os-release")).read_bytes() == b"ID=test\n"
    assert Path(os.path.join(top, "srv/one")).read_bytes() == b"1"


def test_import_oci_layout_with_index_picks_host_platform(store, tmp_path):
    amd = build_image([file_layer({"arch": b"amd64"})])
    arm = build_image([file_layer({"arch": b"arm64"})], architecture="arm64")
    archive = str(tmp_path / "multi.tar")
    oci_layout_tar(archive, {"example.com/multi:1": build_index({"linux/arm64": arm, "linux/amd64": amd})})
    [image] = store.import_archive(archive)
    assert image.id == amd.config_digest
    [layer] = store.layers(image.id)
    assert Path(os.path.join(layer, "arch")).read_bytes() == b"amd64"


def test_oci_layout_with_only_a_tag_needs_a_name(store, tmp_path):
    archive = str(tmp_path / "tagonly.tar")
    oci_layout_tar(archive, {"1.0": build_image([APP1])}, annotation="ref")
    with pytest.raises(InvalidImage, match="--name"):
        store.import_archive(archive)
    [image] = store.import_archive(archive, name="example.com/named:1.0")
    assert image.repo_tags == ("example.com/named:1.0",)


def test_import_docker_save_archive_with_several_tags(store, tmp_path):
    image = build_image([BASE, APP2], docker=True)
    archive = str(tmp_path / "save.tar")
    docker_save_tar(archive, {("app:latest", "example.com/app:2"): image})
    [imported] = store.import_archive(archive)
    assert imported.id == image.config_digest
    assert imported.repo_tags == ("docker.io/library/app:latest", "example.com/app:2")
    assert store.status("app") == store.status("example.com/app:2") == imported
    assert [os.path.basename(p) for p in store.layers("app")] == [d.removeprefix("sha256:") for d in image.diff_ids]


def test_gzipped_docker_save_archive_imports(store, tmp_path):
    image = build_image([APP1], docker=True)
    archive = tmp_path / "save.tar"
    docker_save_tar(str(archive), {("app:gz",): image})
    compressed = tmp_path / "save.tar.gz"
    compressed.write_bytes(gzip.compress(archive.read_bytes()))
    [imported] = store.import_archive(str(compressed))
    assert imported.repo_tags == ("docker.io/library/app:gz",)


def test_not_an_image_archive_is_rejected(store, tmp_path):
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"hello")
    with pytest.raises(InvalidImage, match="not a readable tar"):
        store.import_archive(str(bogus))


def test_status_resolves_names_ids_id_prefixes_and_repo_digests(store, tmp_path):
    image = build_image([APP1])
    archive = str(tmp_path / "a.tar")
    oci_layout_tar(archive, {"example.com/a:1": image})
    [imported] = store.import_archive(archive)
    hexid = image.config_digest.removeprefix("sha256:")
    for ref in (
        "example.com/a:1",
        image.config_digest,
        hexid,
        hexid[:12],
        f"example.com/a@{image.manifest_digest}",
    ):
        assert store.status(ref) == imported, ref
    assert store.status("example.com/a:2") is None
    assert store.status("example.com/other@" + image.manifest_digest) is None
    with pytest.raises(ImageNotFound, match=r"example\.com/a:2"):
        store.config("example.com/a:2")


def test_remove_keeps_layers_shared_with_other_images(store, tmp_path):
    one, two = build_image([BASE, APP1]), build_image([BASE, APP2])
    archive = str(tmp_path / "two.tar")
    oci_layout_tar(archive, {"example.com/one:1": one, "example.com/two:1": two})
    store.import_archive(archive)
    assert len(_layer_names(store)) == 3  # BASE unpacked once
    assert store.remove("example.com/one:1") is True
    assert [i.repo_tags for i in store.list()] == [("example.com/two:1",)]
    assert _layer_names(store) == sorted(d.removeprefix("sha256:") for d in two.diff_ids)
    assert store.layers("example.com/two:1")  # still usable
    assert store.remove("example.com/two:1") is True
    assert _layer_names(store) == []
    assert os.listdir(store.blobs.dir) == []
    assert store.remove("example.com/two:1") is False


def test_remove_by_id_drops_every_name_of_the_image(store, tmp_path):
    image = build_image([APP1], docker=True)
    archive = str(tmp_path / "save.tar")
    docker_save_tar(archive, {("x:1", "y:2"): image})
    store.import_archive(archive)
    assert store.remove(image.config_digest)
    assert store.list() == []


def test_missing_layer_directory_is_unpacked_again(store, tmp_path):
    archive = str(tmp_path / "a.tar")
    oci_layout_tar(archive, {"example.com/a:1": build_image([APP1])})
    store.import_archive(archive)
    [layer] = store.layers("example.com/a:1")
    shutil.rmtree(layer)
    assert store.layers("example.com/a:1") == [layer]
    assert os.path.exists(os.path.join(layer, "srv/one"))


def test_commit_refuses_a_manifest_whose_blobs_are_missing(store):
    image = build_image([APP1])
    store.blobs.write(image.manifest)
    store.blobs.write(image.config)
    with pytest.raises(InvalidImage, match="not in the store"):
        store.commit(["example.com/a:1"], image.manifest_digest)
    assert store.list() == []


def test_index_survives_a_new_store_object_on_the_same_root(store, tmp_path):
    archive = str(tmp_path / "a.tar")
    oci_layout_tar(archive, {"example.com/a:1": build_image([APP1])})
    [image] = store.import_archive(archive)
    again = ImageStore(store.root, whiteouts=RecordingWhiteouts())
    assert again.list() == [image]


def test_fs_info_counts_bytes_and_inodes_of_the_store(store, tmp_path):
    before = store.fs_info()
    archive = str(tmp_path / "big.tar")
    oci_layout_tar(archive, {"example.com/big:1": build_image([file_layer({"blob": os.urandom(256 * 1024)})])})
    store.import_archive(archive)
    after = store.fs_info()
    assert after.mountpoint == store.root
    assert after.used_bytes - before.used_bytes >= 2 * 256 * 1024  # blob + unpacked copy
    assert after.inodes_used > before.inodes_used
    assert after.timestamp_ns >= before.timestamp_ns


@pytest.mark.skipif(not os.path.exists(BUSYBOX_BINARY), reason="needs Debian's busybox-static")
def test_ensure_builtin_makes_busybox_with_applets_and_a_pinned_pause_image(store):
    busybox, pause = store.ensure_builtin()
    assert busybox.repo_tags == (BUSYBOX_REF,)
    assert store.status("busybox") == store.status("busybox:latest") == busybox
    assert pause.repo_tags == (PAUSE_REF,)
    assert pause.pinned
    assert not busybox.pinned
    assert store.config("busybox").cmd == ("sh",)
    assert store.config(PAUSE_REF).entrypoint == ("/pause",)
    [root] = store.layers("busybox")
    assert os.readlink(os.path.join(root, "bin/sh")) == "/bin/busybox"
    assert os.readlink(os.path.join(root, "usr/bin/wget")) == "/bin/busybox"
    assert "nobody:x:65534:65534" in Path(os.path.join(root, "etc/passwd")).read_text()
    assert os.stat(os.path.join(root, "tmp")).st_mode & 0o7777 == 0o1777
    [pause_root] = store.layers(PAUSE_REF)
    assert os.access(os.path.join(pause_root, "pause"), os.X_OK)


@pytest.mark.skipif(not os.path.exists(BUSYBOX_BINARY), reason="needs Debian's busybox-static")
def test_ensure_builtin_is_idempotent_reproducible_and_fast_when_warm(store, tmp_path):
    first = store.ensure_builtin()
    started = time.perf_counter()
    assert store.ensure_builtin() == first
    assert time.perf_counter() - started < 0.5
    other = ImageStore(str(tmp_path / "other"), whiteouts=RecordingWhiteouts())
    assert [i.id for i in other.ensure_builtin()] == [i.id for i in first]  # same binary → same image ids
    store.remove(PAUSE_REF)
    assert [i.repo_tags for i in store.ensure_builtin()] == [(BUSYBOX_REF,), (PAUSE_REF,)]
