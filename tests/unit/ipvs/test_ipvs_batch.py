"""The hand-packed IPVS messages decode, with pyroute2's own parser, to what the operation says."""

import errno
import socket
import struct
from typing import Any

from pyroute2.netlink.generic import ipvs as genl_ipvs

from netproxy.ipvs import batch, plan
from netproxy.netlink import NLMSG_ERROR, parse_acks

KEY = plan.VirtualKey("10.96.0.10", "TCP", 80)


def decode(data: bytes) -> Any:
    msg = genl_ipvs.ipvsmsg(data)
    msg.decode()
    return msg


def test_add_service_carries_the_full_entry_the_kernel_requires() -> None:
    msg = decode(batch.message(42, 7, plan.AddService(plan.VirtualServer(KEY, "rr", 300))))
    assert msg["header"]["type"] == 42
    assert msg["header"]["sequence_number"] == 7
    assert msg["cmd"] == batch.CMD_NEW_SERVICE
    svc = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    assert svc.get_attr("IPVS_SVC_ATTR_PROTOCOL") == socket.IPPROTO_TCP
    assert svc.get_attr("IPVS_SVC_ATTR_PORT") == 80
    assert svc.get_attr("IPVS_SVC_ATTR_SCHED_NAME") == "rr"
    assert svc.get_attr("IPVS_SVC_ATTR_TIMEOUT") == 300
    assert svc.get_attr("IPVS_SVC_ATTR_NETMASK") == "255.255.255.255"


def test_dest_messages_name_service_and_real() -> None:
    real = plan.RealKey("10.244.1.2", 8080)
    msg = decode(batch.message(42, 8, plan.EditReal(KEY, real, 0)))
    assert msg["cmd"] == batch.CMD_SET_DEST
    dest = msg.get_attr("IPVS_CMD_ATTR_DEST")
    assert dest.get_attr("IPVS_DEST_ATTR_PORT") == 8080
    assert dest.get_attr("IPVS_DEST_ATTR_WEIGHT") == 0
    delete = decode(batch.message(42, 9, plan.DeleteReal(KEY, real)))
    assert delete["cmd"] == batch.CMD_DEL_DEST
    assert delete.get_attr("IPVS_CMD_ATTR_DEST").get_attr("IPVS_DEST_ATTR_WEIGHT") is None


def test_acks_are_matched_by_sequence_and_idempotent_errors_tolerated() -> None:
    def ack(seq: int, err: int) -> bytes:
        return struct.pack("=IHHII", 36, NLMSG_ERROR, 0, seq, 0) + struct.pack("=i", -err) + b"\0" * 16

    assert parse_acks(ack(1, 0) + ack(2, errno.EEXIST)) == [(1, 0), (2, errno.EEXIST)]
    assert batch.tolerated(plan.AddService(plan.VirtualServer(KEY)), errno.EEXIST)
    assert batch.tolerated(plan.DeleteService(KEY), errno.ESRCH)
    assert not batch.tolerated(plan.EditService(plan.VirtualServer(KEY)), errno.ENOENT)


def test_holder_address_messages_decode_as_rtnetlink_requests() -> None:
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    add = ifaddrmsg(batch.address_message(5, 3, "10.96.0.10", add=True))
    add.decode()
    assert add["header"]["type"] == batch.RTM_NEWADDR
    assert add["header"]["sequence_number"] == 5
    assert (add["family"], add["prefixlen"], add["index"]) == (socket.AF_INET, 32, 3)
    assert add.get_attr("IFA_LOCAL") == add.get_attr("IFA_ADDRESS") == "10.96.0.10"
    delete = ifaddrmsg(batch.address_message(6, 3, "10.96.0.10", add=False))
    delete.decode()
    assert delete["header"]["type"] == batch.RTM_DELADDR
