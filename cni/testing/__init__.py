"""Stateful fakes of the kernel-facing interfaces, for unit tests of the plugin logic."""

from cni.testing.fakes import FakeMasquerader, FakeNamespace, FakeNetlinkOpener

__all__ = ["FakeMasquerader", "FakeNamespace", "FakeNetlinkOpener"]
