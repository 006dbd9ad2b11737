"""Fakes for admission: an in-memory `ObjectReader` and request attributes."""

from controlplane.admission.testing.fakes import FakeAttributes, FakeReader

__all__ = ["FakeAttributes", "FakeReader"]
