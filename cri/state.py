"""Explicit states of sandboxes and containers, and which operations each state allows."""

from __future__ import annotations

import enum

from cri.errors import InvalidTransition


class SandboxState(enum.Enum):
    READY = "READY"
    NOTREADY = "NOTREADY"


class ContainerState(enum.Enum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    EXITED = "EXITED"
    UNKNOWN = "UNKNOWN"


_ALL = frozenset(ContainerState)
CONTAINER_ACTIONS: dict[str, frozenset[ContainerState]] = {
    "start": frozenset({ContainerState.CREATED}),
    "exec": frozenset({ContainerState.RUNNING}),
    "attach to": frozenset({ContainerState.RUNNING}),
    "update resources of": frozenset({ContainerState.CREATED, ContainerState.RUNNING}),
    "stop": _ALL,
    "remove": _ALL,
}
SANDBOX_ACTIONS: dict[str, frozenset[SandboxState]] = {
    "create a container in": frozenset({SandboxState.READY}),
    "port-forward to": frozenset({SandboxState.READY}),
    "stop": frozenset(SandboxState),
    "remove": frozenset(SandboxState),
}


def check_container(ident: str, state: ContainerState, action: str) -> None:
    if state not in CONTAINER_ACTIONS[action]:
        raise InvalidTransition("container", ident, state.value, action)


def check_sandbox(ident: str, state: SandboxState, action: str) -> None:
    if state not in SANDBOX_ACTIONS[action]:
        raise InvalidTransition("sandbox", ident, state.value, action)
