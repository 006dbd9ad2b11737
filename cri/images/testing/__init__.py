"""Fakes and builders for tests of the image store and of code that uses it (the CRI runtime)."""
