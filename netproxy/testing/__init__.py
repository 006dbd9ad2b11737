"""Fakes for netproxy's kernel and API doors, and an iptables packet simulator."""

from netproxy.testing.fakes import FakeConntrack, FakeEvents, FakeFlow, FakeIpset, FakeNft, FakeNftElements, FakeSource
from netproxy.testing.iptables import FakeIptables, Outcome, Packet, simulate

__all__ = [
    "FakeConntrack",
    "FakeEvents",
    "FakeFlow",
    "FakeIpset",
    "FakeIptables",
    "FakeNft",
    "FakeNftElements",
    "FakeSource",
    "Outcome",
    "Packet",
    "simulate",
]
