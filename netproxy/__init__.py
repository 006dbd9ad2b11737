"""netproxy package."""
