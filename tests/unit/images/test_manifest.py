import json

import pytest

from cri.images import InvalidImage
from cri.images.manifest import (
    media_type_of,
    parse_config,
    parse_index,
    parse_manifest,
    select_platform,
    sha256_digest,
)
from cri.images.testing.builders import build_image, build_index, file_layer
from cri.images.types import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, ImageConfig, Platform

AMD64 = Platform("linux", "amd64")


def test_oci_and_docker_manifests_parse_to_config_and_layers_bottom_first():
    layers = [file_layer({"a": b"1"}), file_layer({"b": b"2"})]
    for docker, media in ((False, OCI_MANIFEST), (True, DOCKER_MANIFEST)):
        image = build_image(layers, docker=docker, gzip_layers=True)
        m = parse_manifest(image.manifest)
        assert m.media_type == media
        assert m.config.digest == image.config_digest
        assert [d.digest for d in m.layers] == [sha256_digest(b) for b in image.layers]


def test_manifest_without_media_type_is_recognized_by_shape():
    image = build_image([file_layer({"a": b"1"})])
    doc = json.loads(image.manifest)
    del doc["mediaType"]
    assert media_type_of(json.dumps(doc).encode()) == OCI_MANIFEST
    assert media_type_of(json.dumps({"manifests": []}).encode()) == OCI_INDEX


def test_schema1_manifest_is_refused():
    with pytest.raises(InvalidImage, match="unsupported manifest media type"):
        parse_manifest(json.dumps({"schemaVersion": 1, "fsLayers": []}).encode())


@pytest.mark.parametrize(
    "bad",
    [b"not json", b"[]", b'{"config": {"digest": "sha256:00", "size": 1}, "layers": []}'],
)
def test_malformed_manifests_raise_invalid_image(bad):
    with pytest.raises(InvalidImage):
        parse_manifest(bad)


def test_index_selects_the_host_platform_and_prefers_exact_variant():
    amd = build_image([file_layer({"a": b"amd"})])
    arm = build_image([file_layer({"a": b"arm"})], architecture="arm64")
    index = parse_index(build_index({"linux/arm64": arm, "linux/amd64": amd}).body)
    assert select_platform(index, AMD64).digest == amd.manifest_digest
    assert select_platform(index, Platform("linux", "arm64")).digest == arm.manifest_digest
    with pytest.raises(InvalidImage, match=r"no manifest for linux/s390x.*linux/amd64"):
        select_platform(index, Platform("linux", "s390x"))


def test_config_gives_runtime_fields_and_diff_ids():
    blob = json.dumps(
        {
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
            "config": {
                "Entrypoint": ["/bin/app"],
                "Cmd": ["--flag"],
                "Env": ["A=1"],
                "WorkingDir": "/srv",
                "User": "1000:1000",
                "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                "Labels": {"k": "v"},
                "StopSignal": "SIGQUIT",
            },
        }
    ).encode()
    config, diff_ids = parse_config(blob)
    assert diff_ids == ("sha256:" + "1" * 64,)
    assert config.entrypoint == ("/bin/app",)
    assert config.cmd == ("--flag",)
    assert config.env == ("A=1",)
    assert (config.working_dir, config.user, config.stop_signal) == ("/srv", "1000:1000", "SIGQUIT")
    assert config.exposed_ports == ("53/udp", "8080/tcp")
    assert config.labels == {"k": "v"}


def test_config_with_null_config_section_is_empty_not_an_error():
    config, diff_ids = parse_config(b'{"rootfs": {"type": "layers", "diff_ids": []}, "config": null}')
    assert config.cmd == ()
    assert diff_ids == ()


def test_config_without_layers_rootfs_is_invalid():
    with pytest.raises(InvalidImage, match="rootfs"):
        parse_config(b'{"config": {}}')


@pytest.mark.parametrize(
    ("user", "want"),
    [
        ("", (None, "")),
        ("1000", (1000, "")),
        ("1000:50", (1000, "")),
        ("app", (None, "app")),
        ("app:grp", (None, "app")),
    ],
)
def test_uid_and_username_split_the_config_user(user, want):
    assert ImageConfig(user=user).uid_and_username() == want
