"""Pure helpers of the etcd backend."""

from __future__ import annotations

from controlplane.storage.etcd import prefix_end


def test_prefix_end_is_the_first_key_after_the_prefix() -> None:
    assert prefix_end(b"/registry/pods/") == b"/registry/pods0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"
