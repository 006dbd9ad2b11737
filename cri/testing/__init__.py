"""Test helpers other components use: `daemon.start_cri` runs the daemon as a subprocess."""
