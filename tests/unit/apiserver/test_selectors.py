"""Label and field selector parsing and matching."""

from __future__ import annotations

import pytest

from controlplane.apiserver.errors import BadRequest
from controlplane.apiserver.selectors import fields_match, labels_match, parse_field_selector, parse_label_selector


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a in (x, y),c", {"a": "y", "c": ""}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("!a", {"b": "1"}, True),
        ("a,!b", {"a": "1", "b": "2"}, False),
        ("", {"z": "z"}, True),
    ],
)
def test_label_selector_matches_like_kubernetes(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), labels) is expected


def test_malformed_label_selector_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_label_selector("a in x")


def test_field_selector_reads_nested_fields_and_missing_as_empty() -> None:
    pod = {"metadata": {"name": "p", "namespace": "n"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    assert fields_match(parse_field_selector("spec.nodeName=n1,status.phase!=Failed"), pod)
    assert fields_match(parse_field_selector("spec.schedulerName="), pod)
    assert not fields_match(parse_field_selector("metadata.name=q"), pod)
