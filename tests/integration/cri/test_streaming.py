import asyncio
import concurrent.futures
import json
import struct
import time

import aiohttp
import grpc
import pytest

from cri import linux
from cri.api import api_pb2


def in_netns(netns, coro_fn):
    """Run an asyncio client in a thread that joined the daemon's network namespace (setns(2) moves
    only the calling thread), so 127.0.0.1 is the streaming server's loopback."""

    def run():
        linux.setns(netns, linux.CLONE_NEWNET)
        return asyncio.run(coro_fn())

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(timeout=60)


async def _exec_session(url, *, send=(), protocol="v5.channel.k8s.io"):
    """Run one exec session; returns ({channel: bytes}, final status)."""
    out: dict[int, bytes] = {}
    async with aiohttp.ClientSession() as session, session.ws_connect(url, protocols=[protocol]) as ws:
        assert ws.protocol == protocol
        for frame in send:
            await ws.send_bytes(frame)
        async with asyncio.timeout(20):
            async for msg in ws:
                channel, data = msg.data[0], msg.data[1:]
                if channel == 3:
                    return out, json.loads(data)
                out[channel] = out.get(channel, b"") + data
    raise AssertionError(f"no status frame; got {out}")


def test_exec_streams_stdin_stdout_stderr_and_the_exit_status(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sleep", "60"])
    req = api_pb2.ExecRequest(
        container_id=cid,
        cmd=["sh", "-c", "read x; echo got $x; echo oops >&2; exit 3"],
        stdin=True,
        stdout=True,
        stderr=True,
    )
    url = cri.rt.Exec(req).url
    out, status = in_netns(cri.netns, lambda: _exec_session(url, send=[b"\x00hello\n"]))
    assert out[1] == b"got hello\n"
    assert out[2] == b"oops\n"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    # a URL is single-use
    with pytest.raises(aiohttp.WSServerHandshakeError):
        in_netns(cri.netns, lambda: _exec_session(url))


def test_exec_with_a_tty_gets_a_terminal_and_its_size(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sleep", "60"])
    req = api_pb2.ExecRequest(
        container_id=cid,
        cmd=["sh", "-c", "read x; tty; stty size"],
        stdin=True,
        stdout=True,
        tty=True,
    )
    url = cri.rt.Exec(req).url
    resize = b"\x04" + json.dumps({"Width": 123, "Height": 45}).encode()
    out, status = in_netns(
        cri.netns, lambda: _exec_session(url, send=[resize, b"\x00go\n"], protocol="v4.channel.k8s.io")
    )
    assert status == {"metadata": {}, "status": "Success"}
    text = out[1].decode()
    assert "/dev/pts/0" in text  # the pty lives on the container's own devpts
    assert "45 123" in text
    assert 2 not in out


def test_port_forward_reaches_a_port_inside_the_pod_and_ends_when_the_pod_side_does(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["nc", "-l", "-p", "8080", "-e", "echo", "hello-from-pod"])
    for _ in range(100):  # wait until it listens (probing with a connection would use up nc's one)
        if ":8080 " in cri.exec(cid, "netstat", "-ltn").stdout.decode():
            break
        time.sleep(0.05)
    url = cri.rt.PortForward(api_pb2.PortForwardRequest(pod_sandbox_id=sid, port=[8080])).url

    async def forward():
        got = b""
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{url}?port=8080", protocols=["v4.channel.k8s.io"]) as ws,
        ):
            headers = [await ws.receive_bytes(), await ws.receive_bytes()]
            async with asyncio.timeout(10):
                async for msg in ws:  # until the server closes the stream: echo exited, nc hung up
                    assert msg.data[0] == 0, msg
                    got += msg.data[1:]
            closed = ws.closed
        return headers, got, closed

    headers, got, closed = in_netns(cri.netns, forward)
    assert headers == [b"\x00" + struct.pack("<H", 8080), b"\x01" + struct.pack("<H", 8080)]
    assert got == b"hello-from-pod\n"
    assert closed


def test_exec_and_attach_need_a_stream_and_a_matching_tty(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sleep", "60"])
    for call in (
        lambda: cri.rt.Exec(api_pb2.ExecRequest(container_id=cid, cmd=["ls"])),
        lambda: cri.rt.Attach(api_pb2.AttachRequest(container_id=cid)),
        lambda: cri.rt.Attach(api_pb2.AttachRequest(container_id=cid, stdout=True, tty=True)),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_attach_feeds_stdin_and_streams_output_until_the_container_exits(cri):
    sid, config = cri.run_pod("p")
    script = 'while read line; do echo "got $line"; echo "err $line" >&2; done; echo bye'
    cid = cri.run(sid, config, ["sh", "-c", script], stdin=True)
    url = cri.rt.Attach(api_pb2.AttachRequest(container_id=cid, stdin=True, stdout=True, stderr=True)).url
    out, status = in_netns(cri.netns, lambda: _exec_session(url, send=[b"\x00hello\n", b"\xff\x00"]))
    assert out[1] == b"got hello\nbye\n"
    assert out[2] == b"err hello\n"
    assert status["status"] == "Success"
    st = cri.wait_exited(cid)
    assert st.exit_code == 0
    assert any(line.endswith("stdout F got hello") for line in cri.log_lines("p"))


def test_attach_to_a_tty_container_shares_its_terminal(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sh", "-c", "read x; tty; echo got $x"], stdin=True, stdin_once=True, tty=True)
    url = cri.rt.Attach(api_pb2.AttachRequest(container_id=cid, stdin=True, stdout=True, tty=True)).url
    out, status = in_netns(cri.netns, lambda: _exec_session(url, send=[b"\x00hi\n"]))
    assert status["status"] == "Success"
    assert "/dev/pts/0" in out[1].decode()
    assert "got hi" in out[1].decode()
    assert cri.wait_exited(cid).exit_code == 0
    assert any("stdout F got hi" in line for line in cri.log_lines("p")), cri.log_lines("p")
