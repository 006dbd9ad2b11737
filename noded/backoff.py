"""Crash-loop back-off per (pod uid, container name), as the kubelet does it: the first restart after a
crash is immediate and arms the initial delay; each further restart doubles it up to the cap; a container
that stayed up longer than twice the cap starts over. While `remaining()` is positive the container's
waiting reason is `CrashLoopBackOff`."""

from __future__ import annotations

from dataclasses import dataclass, field

BackoffKey = tuple[str, str]


@dataclass
class _Entry:
    delay: float
    last: float


@dataclass
class Backoff:
    initial: float = 10.0
    cap: float = 300.0
    _entries: dict[BackoffKey, _Entry] = field(default_factory=dict)

    def remaining(self, key: BackoffKey, finished_at: float, now: float) -> float:
        """Seconds until a container that finished at `finished_at` may be restarted (0 = now)."""
        entry = self._entries.get(key)
        if entry is None or now - entry.last > 2 * self.cap:
            return 0.0
        return max(0.0, finished_at + entry.delay - now)

    def delay(self, key: BackoffKey) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def restarted(self, key: BackoffKey, now: float) -> None:
        """Record a restart: arm the initial delay, or double the current one."""
        entry = self._entries.get(key)
        if entry is None or now - entry.last > 2 * self.cap:
            self._entries[key] = _Entry(self.initial, now)
        else:
            self._entries[key] = _Entry(min(entry.delay * 2, self.cap), now)

    def forget(self, uid: str) -> None:
        for key in [k for k in self._entries if k[0] == uid]:
            del self._entries[key]
