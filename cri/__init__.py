"""cri package."""
