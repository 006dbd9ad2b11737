"""Shared test harness: private namespaces, scratch cgroups and host-state snapshots."""
