"""Helpers other components\x27 tests use to run the control plane."""
