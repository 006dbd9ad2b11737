"""Errors of the netns lab.

NetLabError
├── PlanError        the address plan cannot hold what was asked (too many nodes, bad ranges)
├── AlreadyRunning   a lab is up in this state dir, or its namespaces exist
├── NotRunning       `down`/`status` found no lab in this state dir
└── StartError       a step of `up` failed (a command, a daemon that died or never got ready)
"""

from __future__ import annotations


class NetLabError(Exception):
    """Root of every error `tinykube lab up|down|status` reports to the user."""


class PlanError(NetLabError):
    pass


class AlreadyRunning(NetLabError):
    pass


class NotRunning(NetLabError):
    pass


class StartError(NetLabError):
    pass
