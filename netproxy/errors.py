"""netproxy's exceptions.

NetproxyError
├── InvalidObject   a Service or EndpointSlice the model cannot use (names the object)
└── ApplyError      the kernel tool refused a transaction (the previous rules stay)
"""

from __future__ import annotations


class NetproxyError(Exception):
    """Root of every error netproxy raises on purpose."""


class InvalidObject(NetproxyError):
    """One API object is unusable; only that object is skipped, every other one is still programmed."""

    def __init__(self, kind: str, key: str, reason: str) -> None:
        super().__init__(f"{kind} {key}: {reason}")
        self.kind = kind
        self.key = key
        self.reason = reason


class ApplyError(NetproxyError):
    """`iptables-restore` / `nft -f` rejected a transaction; nothing of it reached the kernel."""

    def __init__(self, tool: str, returncode: int, stderr: str) -> None:
        super().__init__(f"{tool} exited {returncode}: {stderr.strip()}")
        self.tool = tool
        self.returncode = returncode
        self.stderr = stderr
