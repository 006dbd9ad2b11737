"""Stateful fakes for noded's unit tests: an in-memory CRI runtime, an in-memory API server, a
recording mounter."""

from noded.testing.api import FakeApi, merge_patch
from noded.testing.mounter import RecordingMounter
from noded.testing.runtime import FakeRuntime

__all__ = ["FakeApi", "FakeRuntime", "RecordingMounter", "merge_patch"]
