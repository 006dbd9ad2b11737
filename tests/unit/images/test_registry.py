import base64
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from cri.images import AuthError, DigestMismatch, ImageStore, PullError, RegistryAuth
from cri.images.registry import basic_credentials, parse_challenge, pull, push, uses_plain_http
from cri.images.testing.builders import build_image, build_index, file_layer
from cri.images.testing.fake_registry import REGISTRY_HOST, STORAGE_HOST, FakeRegistry
from cri.images.testing.fakes import RecordingWhiteouts
from cri.images.types import Platform

REF = f"{REGISTRY_HOST}/team/app:v1"


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "store"), whiteouts=RecordingWhiteouts())


def _publish(registry, image, repo="team/app", tag="v1"):
    for blob in image.blobs().values():
        registry.put_blob(blob)
    return registry.put_manifest(repo, tag, image.manifest)


def test_parse_challenge_reads_quoted_and_bare_params():
    c = parse_challenge('Bearer realm="https://auth.test/token",service="reg, one",scope=repository:a/b:pull')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.test/token", "service": "reg, one", "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="Registry Realm"').scheme == "basic"


def test_credentials_come_from_fields_or_the_base64_auth_string():
    assert basic_credentials(RegistryAuth(username="u", password="p")) == ("u", "p")
    assert basic_credentials(RegistryAuth(auth=base64.b64encode(b"u2:p:w").decode())) == ("u2", "p:w")
    assert basic_credentials(None) is None


@pytest.mark.parametrize(
    ("host", "plain"),
    [("127.0.0.1:5000", True), ("localhost:5000", True), ("[::1]:80", True), ("quay.io", False), ("10.0.0.1", False)],
)
def test_only_loopback_or_listed_registries_use_plain_http(host, plain):
    assert uses_plain_http(host, frozenset()) is plain
    assert uses_plain_http("10.0.0.1", frozenset({"10.0.0.1"}))


def test_pull_by_tag_stores_verified_image_with_repo_digest(store):
    registry = FakeRegistry()
    image = build_image([file_layer({"a": b"1"}), file_layer({"b": b"2"})], gzip_layers=True, docker=True)
    digest = _publish(registry, image)
    pulled = pull(store, REF, transport=registry)
    assert pulled.id == image.config_digest
    assert pulled.repo_tags == (REF,)
    assert pulled.repo_digests == (f"{REGISTRY_HOST}/team/app@{digest}",)
    assert len(store.layers(REF)) == 2
    assert all(s.url.startswith(f"https://{REGISTRY_HOST}/v2/team/app/") for s in registry.sent)


def test_pull_of_an_index_takes_the_requested_platform_and_records_the_index_digest(store):
    registry = FakeRegistry()
    amd = build_image([file_layer({"arch": b"amd64"})])
    arm = build_image([file_layer({"arch": b"arm64"})], architecture="arm64")
    for image in (amd, arm):
        _publish(registry, image, tag=image.manifest_digest)
    index_digest = registry.put_manifest("team/app", "v1", build_index({"linux/amd64": amd, "linux/arm64": arm}).body)
    pulled = pull(store, REF, transport=registry, platform=Platform("linux", "arm64"))
    assert pulled.id == arm.config_digest
    assert pulled.manifest_digest == arm.manifest_digest
    assert pulled.repo_digests == (f"{REGISTRY_HOST}/team/app@{index_digest}",)
    assert store.status(f"{REGISTRY_HOST}/team/app@{index_digest}") == pulled


def test_pull_by_digest_verifies_the_manifest(store):
    registry = FakeRegistry()
    image = build_image([file_layer({"a": b"1"})])
    digest = _publish(registry, image)
    pulled = pull(store, f"{REGISTRY_HOST}/team/app@{digest}", transport=registry)
    assert pulled.repo_tags == ()
    registry.corrupt[digest] = image.manifest.replace(b"schemaVersion", b"schemaVersion ")
    with pytest.raises(DigestMismatch, match="manifest"):
        pull(
            ImageStore(store.root + "2", whiteouts=RecordingWhiteouts()),
            f"{REGISTRY_HOST}/team/app@{digest}",
            transport=registry,
        )


def test_corrupted_layer_fails_the_pull_and_leaves_no_image(store):
    registry = FakeRegistry()
    image = build_image([file_layer({"a": b"1"})], gzip_layers=True)
    _publish(registry, image)
    layer_digest = json.loads(image.manifest)["layers"][0]["digest"]
    registry.corrupt[layer_digest] = b"evil bytes"
    with pytest.raises(DigestMismatch, match=layer_digest):
        pull(store, REF, transport=registry)
    assert store.list() == []
    assert not store.blobs.has(layer_digest)


def test_token_auth_flow_with_credentials(store):
    registry = FakeRegistry(users={"alice": "s3cret"})
    _publish(registry, build_image([file_layer({"a": b"1"})]))
    pulled = pull(store, REF, transport=registry, auth=RegistryAuth(username="alice", password="s3cret"))
    assert pulled.repo_tags == (REF,)
    token_requests = [s for s in registry.sent if "/token" in s.url]
    assert len(token_requests) == 1  # the token is reused for the following requests
    assert "scope=repository%3Ateam%2Fapp%3Apull" in token_requests[0].url
    assert "service=registry.test" in token_requests[0].url


def test_wrong_or_missing_credentials_raise_auth_error(store):
    registry = FakeRegistry(users={"alice": "s3cret"})
    _publish(registry, build_image([file_layer({"a": b"1"})]))
    with pytest.raises(AuthError, match="refused"):
        pull(store, REF, transport=registry, auth=RegistryAuth(username="alice", password="nope"))
    with pytest.raises(AuthError):
        pull(store, REF, transport=registry)


def test_identity_token_is_exchanged_with_an_oauth2_refresh_grant(store):
    registry = FakeRegistry(users={"alice": "s3cret"})
    registry.refresh_tokens.add("refresh-me")
    _publish(registry, build_image([file_layer({"a": b"1"})]))
    pull(store, REF, transport=registry, auth=RegistryAuth(identity_token="refresh-me"))
    [grant] = [s for s in registry.sent if s.method == "POST"]
    assert grant.headers["Content-Type"] == "application/x-www-form-urlencoded"
    with pytest.raises(AuthError):
        pull(store, REF, transport=registry, auth=RegistryAuth(identity_token="stale"))


def test_registry_token_is_sent_as_bearer_without_a_token_round_trip(store):
    registry = FakeRegistry()
    _publish(registry, build_image([file_layer({"a": b"1"})]))
    pull(store, REF, transport=registry, auth=RegistryAuth(registry_token="abc"))
    assert all(s.headers.get("Authorization") == "Bearer abc" for s in registry.sent)


def test_concurrent_pulls_of_images_sharing_a_layer_unpack_it_once(store):
    registry = FakeRegistry()
    base = file_layer({"shared": b"s" * 10000})
    images = [build_image([base, file_layer({"own": str(i).encode()})], gzip_layers=True) for i in range(4)]
    for i, image in enumerate(images):
        _publish(registry, image, tag=f"v{i}")
    with ThreadPoolExecutor(max_workers=4) as pool:
        pulled = list(pool.map(lambda i: pull(store, f"{REGISTRY_HOST}/team/app:v{i}", transport=registry), range(4)))
    assert [p.id for p in pulled] == [i.config_digest for i in images]
    assert len(os.listdir(store.layers_dir)) == 5
    assert os.listdir(store.blobs.ingest_dir) == []  # no temp files or half-unpacked layers left


def test_blob_redirects_drop_the_authorization_header(store):
    registry = FakeRegistry(users={"alice": "s3cret"}, redirect_blobs=True)
    _publish(registry, build_image([file_layer({"a": b"1"})]))
    pull(store, REF, transport=registry, auth=RegistryAuth(username="alice", password="s3cret"))
    storage = [s for s in registry.sent if STORAGE_HOST in s.url]
    assert storage
    assert all("Authorization" not in s.headers for s in storage)


def test_unknown_image_is_a_pull_error_with_status(store):
    with pytest.raises(PullError, match="HTTP 404") as info:
        pull(store, f"{REGISTRY_HOST}/team/none:1", transport=FakeRegistry())
    assert info.value.status == 404


def test_network_failure_is_wrapped_with_its_cause(store):
    with pytest.raises(PullError, match="no route") as info:
        pull(store, "elsewhere.test/x:1", transport=FakeRegistry())
    assert isinstance(info.value.__cause__, OSError)


class Unreachable:
    def request(self, method, url, *, headers, body=None):
        raise ConnectionRefusedError(f"{url}: connection refused")


def test_unreachable_registry_falls_back_to_a_local_image_of_that_name(store):
    registry = FakeRegistry()
    image = build_image([file_layer({"a": b"1"})])
    _publish(registry, image)
    local = pull(store, REF, transport=registry)
    offline = ImageStore(store.root, whiteouts=RecordingWhiteouts())
    assert pull(offline, REF, transport=Unreachable()) == local
    with pytest.raises(PullError, match="HTTP 404"):  # a registry that answers is believed
        pull(offline, REF, transport=FakeRegistry())


def test_push_then_pull_round_trips_through_token_auth(store, tmp_path):
    registry = FakeRegistry(users={"bob": "pw"})
    source = ImageStore(str(tmp_path / "src"), whiteouts=RecordingWhiteouts())
    image = build_image([file_layer({"a": b"1"}), file_layer({"b": b"2"})])
    for blob in image.blobs().values():
        source.blobs.write(blob)
    source.commit(["example.com/local:1"], image.manifest_digest)
    auth = RegistryAuth(username="bob", password="pw")
    digest = push(source, "example.com/local:1", REF, transport=registry, auth=auth)
    assert digest == image.manifest_digest
    uploads = [s for s in registry.sent if s.method == "PUT" and "/blobs/uploads/" in s.url]
    assert len(uploads) == 3
    push(source, "example.com/local:1", REF, transport=registry, auth=auth)  # blobs exist: no re-upload
    assert len([s for s in registry.sent if s.method == "PUT" and "/blobs/uploads/" in s.url]) == 3
    assert pull(store, REF, transport=registry, auth=auth).id == image.config_digest
