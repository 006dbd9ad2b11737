"""Fakes for tests that need a cluster's moving parts without real nodes."""

from controlplane.controllers.testing.fake_kubelet import FakeKubelet, node_body

__all__ = ["FakeKubelet", "node_body"]
