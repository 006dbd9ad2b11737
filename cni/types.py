"""Spec-level data shared by the invoker, the plugin executables and the agent (stdlib-only)."""

from __future__ import annotations

from dataclasses import dataclass

# Spec versions in order; the invoker and our plugins speak all of them that carry the 0.3+ result shape.
SUPPORTED_VERSIONS: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = "1.1.0"

COMMANDS = frozenset({"ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"})
# Verbs that need a container (spec: CNI_CONTAINERID/CNI_IFNAME required; CNI_NETNS required for ADD/CHECK).
CONTAINER_COMMANDS = frozenset({"ADD", "DEL", "CHECK"})


def version_key(version: str) -> tuple[int, ...]:
    """Semver-ish ordering key for a cniVersion; raises ValueError for non-numeric versions."""
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class PluginRequest:
    """One plugin invocation exactly as the spec defines it: the CNI_* environment plus stdin bytes.

    The executable builds it from its environment, the agent receives it over its socket, and the
    in-process fast path gets it from the invoker, so all three run the same plugin code.
    """

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: str = ""
    path: str = ""
    stdin: bytes = b""

    def environ(self) -> dict[str, str]:
        """The CNI_* variables for exec'ing a plugin (empty ones left out, as the spec allows)."""
        pairs = {
            "CNI_COMMAND": self.command,
            "CNI_CONTAINERID": self.container_id,
            "CNI_NETNS": self.netns,
            "CNI_IFNAME": self.ifname,
            "CNI_ARGS": self.args,
            "CNI_PATH": self.path,
        }
        return {k: v for k, v in pairs.items() if v or k == "CNI_COMMAND"}


@dataclass(frozen=True)
class Attachment:
    """A (containerID, ifname) pair, as listed in `cni.dev/valid-attachments` for GC."""

    container_id: str
    ifname: str
