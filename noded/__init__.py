"""noded package."""
