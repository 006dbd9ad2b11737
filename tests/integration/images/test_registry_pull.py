"""Push to and pull from Debian's docker-registry on 127.0.0.1 through the real HTTP transport."""

import os
import time

import pytest

from cri.images import ImageStore, PullError
from cri.images.builtin import BUSYBOX_BINARY
from cri.images.registry import push
from cri.images.testing.builders import build_image, build_index, file_layer
from cri.images.testing.registry import REGISTRY_BINARY, start_registry

pytestmark = pytest.mark.skipif(
    not (os.path.exists(REGISTRY_BINARY) and os.path.exists(BUSYBOX_BINARY)),
    reason="needs Debian's docker-registry and busybox-static",
)


@pytest.fixture
def registry(tmp_path):
    with start_registry(str(tmp_path / "registry")) as handle:
        yield handle


def test_builtin_busybox_pushed_to_registry_pulls_back_identical(registry, tmp_path):
    source = ImageStore(str(tmp_path / "src"))
    [busybox, _] = source.ensure_builtin()
    ref = f"{registry.host}/tinykube/busybox:1"
    digest = push(source, "busybox", ref)
    assert digest == busybox.manifest_digest

    dest = ImageStore(str(tmp_path / "dest"))
    started = time.perf_counter()
    pulled = dest.pull(ref)
    elapsed = time.perf_counter() - started
    print(f"pull of busybox ({busybox.size} bytes) from docker-registry: {elapsed * 1000:.0f} ms")
    assert pulled.id == busybox.id
    assert pulled.repo_tags == (ref,)
    assert pulled.repo_digests == (f"{registry.host}/tinykube/busybox@{digest}",)
    assert dest.config(ref).cmd == ("sh",)
    [layer] = dest.layers(ref)
    assert os.readlink(os.path.join(layer, "bin/sh")) == "/bin/busybox"

    by_digest = dest.pull(f"{registry.host}/tinykube/busybox@{digest}")
    assert by_digest.id == busybox.id
    assert dest.remove(ref)
    assert dest.list() == []


def test_multi_platform_index_with_gzip_layers_pulls_the_amd64_image(registry, tmp_path):
    source = ImageStore(str(tmp_path / "src"))
    amd = build_image([file_layer({"arch": b"amd64"})], gzip_layers=True)
    arm = build_image([file_layer({"arch": b"arm64"})], gzip_layers=True, architecture="arm64")
    index = build_index({"linux/arm64": arm, "linux/amd64": amd})
    for image, name in ((amd, "local/amd:1"), (arm, "local/arm:1")):
        for blob in image.blobs().values():
            source.blobs.write(blob)
        source.commit([name], image.manifest_digest)
        push(source, name, f"{registry.host}/multi/app:{name.split('/')[1].split(':')[0]}")
    # Put the index itself with the registry client so the test needs no second HTTP stack.
    from cri.images.reference import parse_reference
    from cri.images.registry import RegistryClient
    from cri.images.types import OCI_INDEX

    client = RegistryClient(parse_reference(f"{registry.host}/multi/app:v1"), actions="pull,push")
    client.put_manifest("v1", index.body, OCI_INDEX)

    dest = ImageStore(str(tmp_path / "dest"))
    pulled = dest.pull(f"{registry.host}/multi/app:v1")
    assert pulled.id == amd.config_digest
    assert pulled.repo_digests == (f"{registry.host}/multi/app@{index.digest}",)
    [layer] = dest.layers(pulled.id)
    with open(os.path.join(layer, "arch"), "rb") as f:
        assert f.read() == b"amd64"


def test_missing_image_and_closed_port_are_pull_errors(registry, tmp_path):
    store = ImageStore(str(tmp_path / "store"))
    with pytest.raises(PullError, match="HTTP 404") as info:
        store.pull(f"{registry.host}/nothing/here:1")
    assert info.value.status == 404
    registry.stop()
    with pytest.raises(PullError, match="ConnectionRefused"):
        store.pull(f"{registry.host}/nothing/here:1")
