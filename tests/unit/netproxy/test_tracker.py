from __future__ import annotations

import pytest

from netproxy.errors import InvalidObject
from netproxy.testing.objects import endpoint_slice, service
from netproxy.tracker import EndpointsChangeTracker, ServiceChangeTracker, take_changes


def test_service_tracker_reports_previous_and_current() -> None:
    t = ServiceChangeTracker()
    t.update(service("web", "10.96.0.10"))
    (change,) = t.checkpoint().values()
    assert change.previous == ()
    assert change.current[0].cluster_ip == "10.96.0.10"
    t.update(service("web", "10.96.0.11"))
    change = t.checkpoint()["default/web"]
    assert (change.previous[0].cluster_ip, change.current[0].cluster_ip) == ("10.96.0.10", "10.96.0.11")
    assert t.checkpoint() == {}


def test_change_undone_before_checkpoint_is_not_reported() -> None:
    t = ServiceChangeTracker()
    t.update(service("web", "10.96.0.10"))
    t.delete(service("web", "10.96.0.10"))
    assert t.checkpoint() == {}
    assert t.current() == {}


def test_identical_update_is_not_a_change() -> None:
    t = ServiceChangeTracker()
    t.update(service("web", "10.96.0.10"))
    t.checkpoint()
    t.update(service("web", "10.96.0.10"))
    assert t.checkpoint() == {}


def test_invalid_service_keeps_its_last_valid_version() -> None:
    t = ServiceChangeTracker()
    t.update(service("web", "10.96.0.10"))
    t.checkpoint()
    bad = service("web", "10.96.0.10")
    bad["spec"]["ports"][0]["port"] = -1
    with pytest.raises(InvalidObject, match="default/web"):
        t.update(bad)
    assert t.checkpoint() == {}
    assert t.current()["default/web"][0].port == 80


def test_endpoint_tracker_merges_slices_of_one_service() -> None:
    t = EndpointsChangeTracker()
    t.update(endpoint_slice("web", ["10.1.0.1"], name="web-1"))
    t.update(endpoint_slice("web", ["10.1.0.2"], name="web-2"))
    assert set(t.checkpoint()) == {"default/web"}
    assert [e.ip for e in t.current()["default/web"][("http", "TCP")]] == ["10.1.0.1", "10.1.0.2"]
    t.delete(endpoint_slice("web", [], name="web-1"))
    change = t.checkpoint()["default/web"]
    assert len(change.previous[("http", "TCP")]) == 2
    assert [e.ip for e in change.current[("http", "TCP")]] == ["10.1.0.2"]


def test_slice_moving_to_another_service_changes_both() -> None:
    t = EndpointsChangeTracker()
    t.update(endpoint_slice("a", ["10.1.0.1"], name="s"))
    t.checkpoint()
    t.update(endpoint_slice("b", ["10.1.0.1"], name="s"))
    assert set(t.checkpoint()) == {"default/a", "default/b"}
    assert "default/a" not in t.current()


def test_take_changes_builds_state_and_changed_set() -> None:
    st, et = ServiceChangeTracker(), EndpointsChangeTracker()
    st.update(service("web", "10.96.0.10"))
    et.update(endpoint_slice("web", ["10.1.0.1", "10.1.0.2"]))
    et.update(endpoint_slice("other", ["10.1.0.9"]))
    update = take_changes(st, et)
    assert update.changed == {"default/web", "default/other"}
    ((port, eps),) = list(update.state.all_ports())
    assert port.name.name == "web"
    assert [e.ip for e in eps] == ["10.1.0.1", "10.1.0.2"]
    assert take_changes(st, et).changed == frozenset()
