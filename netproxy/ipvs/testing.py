"""Stateful test doubles of the IPVS kernel interfaces (the real ones are tested in the kernel lab)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from netproxy.ipvs.kernel import AddressHolder, IPVSTables
from netproxy.ipvs.plan import (
    AddReal,
    AddService,
    CurrentService,
    DeleteReal,
    DeleteService,
    EditReal,
    EditService,
    Operation,
    RealServer,
    VirtualKey,
)


class FakeIPVSTables:
    """Keeps services and reals like the kernel does, refusing what the kernel would refuse."""

    def __init__(self) -> None:
        self.services: dict[VirtualKey, CurrentService] = {}
        self.applied: list[Operation] = []
        self.snapshots = 0

    def close(self) -> None:
        self.services.clear()

    def snapshot(self, keys: Collection[VirtualKey] | None = None) -> dict[VirtualKey, CurrentService]:
        self.snapshots += 1
        return {
            k: CurrentService(v.server, dict(v.reals)) for k, v in self.services.items() if keys is None or k in keys
        }

    def set_connections(self, service: VirtualKey, address: str, port: int, active: int) -> None:
        """Simulates traffic: gives one real server `active` connections."""
        svc = self.services[service]
        real = next(r for r in svc.reals.values() if (r.key.address, r.key.port) == (address, port))
        reals = dict(svc.reals)
        reals[real.key] = RealServer(real.key, real.weight, active, 0)
        self.services[service] = CurrentService(svc.server, reals)

    def apply(self, ops: Iterable[Operation]) -> None:
        for op in ops:
            self.applied.append(op)
            match op:
                case AddService(server=s):
                    if s.key in self.services:
                        raise KeyError(f"service {s.key} exists")
                    self.services[s.key] = CurrentService(s, {})
                case EditService(server=s):
                    self.services[s.key] = CurrentService(s, self.services[s.key].reals)
                case DeleteService(key=k):
                    del self.services[k]
                case AddReal(service=k, real=r, weight=w):
                    reals = dict(self.services[k].reals)
                    if r in reals:
                        raise KeyError(f"real {r} exists in {k}")
                    reals[r] = RealServer(r, w)
                    self.services[k] = CurrentService(self.services[k].server, reals)
                case EditReal(service=k, real=r, weight=w):
                    reals = dict(self.services[k].reals)
                    old = reals[r]
                    reals[r] = RealServer(r, w, old.active_connections, old.inactive_connections)
                    self.services[k] = CurrentService(self.services[k].server, reals)
                case DeleteReal(service=k, real=r):
                    reals = dict(self.services[k].reals)
                    del reals[r]
                    self.services[k] = CurrentService(self.services[k].server, reals)


class FakeHolder:
    def __init__(self) -> None:
        self._addresses: frozenset[str] = frozenset()
        self.reads = 0  # full syncs, which read the link

    def addresses(self) -> frozenset[str]:
        return self._addresses

    def close(self) -> None:
        self._addresses = frozenset()

    def sync(self, addresses: Iterable[str]) -> None:
        self.reads += 1
        self._addresses = frozenset(addresses)

    def update(self, add: Iterable[str], remove: Iterable[str]) -> None:
        self._addresses = (self._addresses | frozenset(add)) - frozenset(remove)


_tables: IPVSTables = FakeIPVSTables()
_holder: AddressHolder = FakeHolder()
