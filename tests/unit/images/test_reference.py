import pytest
from hypothesis import given
from hypothesis import strategies as st

from cri.images import InvalidReference, normalize_ref, parse_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1"),
        ("user/app", "docker.io/user/app:latest"),
        ("localhost/x", "localhost/x:latest"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("localhost:5000/x:v1", "localhost:5000/x:v1"),
        ("127.0.0.1:5000/a/b/c:v_1.2-rc", "127.0.0.1:5000/a/b/c:v_1.2-rc"),
        ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
        (f"busybox:1.36@{DIGEST}", f"docker.io/library/busybox:1.36@{DIGEST}"),
        ("Example.com/app", "Example.com/app:latest"),
        ("[::1]:5000/app", "[::1]:5000/app:latest"),
        ("a__b/c-d.e", "docker.io/a__b/c-d.e:latest"),
    ],
)
def test_normalize_ref_follows_docker_rules(ref, want):
    assert normalize_ref(ref) == want


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("busybox:", "tag"),
        ("busybox:-bad", "tag"),
        ("busybox@sha256:abc", "digest"),
        ("busybox@md5:" + "a" * 32, "digest"),
        ("a" * 64, "image id"),
        ("a//b", "path component"),
        ("-a/b", "path component"),
        ("a/b_", "path component"),
        ("bad_host.io/x", "registry host"),
        (" busybox", "whitespace"),
        ("docker.io/" + "a" * 260, "longer than"),
    ],
)
def test_invalid_references_say_what_is_wrong(ref, why):
    with pytest.raises(InvalidReference, match=why):
        normalize_ref(ref)


def test_reference_parts_and_registry_host():
    r = parse_reference("busybox")
    assert (r.domain, r.path, r.tag, r.digest) == ("docker.io", "library/busybox", "latest", "")
    assert r.registry_host == "registry-1.docker.io"
    assert r.object == "latest"
    pinned = parse_reference(f"127.0.0.1:5000/x:v1@{DIGEST}")
    assert pinned.registry_host == "127.0.0.1:5000"
    assert pinned.object == DIGEST  # a digest wins over the tag when asking the registry


# No "." in components: a first component with a dot is a registry host, by design.
_component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:_|__|-+)[a-z0-9]{1,6}){0,2}", fullmatch=True)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_domain = st.sampled_from(["", "docker.io/", "localhost/", "localhost:5000/", "quay.io/", "10.0.0.1:80/"])


@given(domain=_domain, path=st.lists(_component, min_size=1, max_size=3), tag=st.none() | _tag)
def test_normalize_is_idempotent_and_keeps_the_tag(domain, path, tag):
    ref = domain + "/".join(path) + (f":{tag}" if tag else "")
    once = normalize_ref(ref)
    assert normalize_ref(once) == once
    assert once.endswith(f":{tag or 'latest'}")
    assert parse_reference(once).path.endswith("/".join(path))
