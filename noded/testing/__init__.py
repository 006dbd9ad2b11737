"""Stateful fakes for noded's unit tests: an in-memory CRI runtime and an in-memory API server."""

from noded.testing.api import FakeApi, merge_patch
from noded.testing.runtime import FakeRuntime

__all__ = ["FakeApi", "FakeRuntime", "merge_patch"]
