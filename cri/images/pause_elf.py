"""A pause program for the pause image, as a 272-byte static x86-64 ELF made here (no compiler,
no network).

What it does, like Kubernetes' pause.c: SIGTERM/SIGINT → exit(0); SIGCHLD ignored, which makes the
kernel reap children (and orphans reparented to it as pid 1) without a wait loop; otherwise
`pause()` forever. As pid 1 of a pid namespace it must install handlers: the kernel drops signals
with default disposition sent to a namespace init.
"""

from __future__ import annotations

import struct

_BASE = 0x400000
_EHDR_SIZE = 64
_PHDR_SIZE = 56
_SA_RESTORER = 0x04000000  # x86-64 refuses to deliver to a handler without a restorer
_SIG_IGN = 1
_SYS_RT_SIGACTION = 13
_SYS_PAUSE = 34
_SYS_EXIT_GROUP = 231
_SIGINT, _SIGTERM, _SIGCHLD = 2, 15, 17


def _mov_eax(v: int) -> bytes:
    return b"\xb8" + struct.pack("<I", v)


def _mov_edi(v: int) -> bytes:
    return b"\xbf" + struct.pack("<I", v)


_XOR_EDX = b"\x31\xd2"
_XOR_EDI = b"\x31\xff"
_MOV_R10D_8 = b"\x41\xba\x08\x00\x00\x00"
_SYSCALL = b"\x0f\x05"
_RET = b"\xc3"


def _lea_rsi(at: int, target: int) -> bytes:
    """`lea rsi, [rip + target]` placed at code offset `at` (7 bytes)."""
    return b"\x48\x8d\x35" + struct.pack("<i", target - (at + 7))


def _call(at: int, target: int) -> bytes:
    return b"\xe8" + struct.pack("<i", target - (at + 5))


def _code() -> tuple[bytes, int]:
    """Machine code plus the two sigaction structs; returns (bytes, entry offset within them)."""
    setexit, handler, act, ign = 56, 79, 88, 120  # offsets fixed by the instruction lengths below
    code = bytearray()
    code += _mov_edi(_SIGTERM) + _call(len(code) + 5, setexit)
    code += _mov_edi(_SIGINT) + _call(len(code) + 5, setexit)
    code += _mov_eax(_SYS_RT_SIGACTION) + _mov_edi(_SIGCHLD)
    code += _lea_rsi(len(code), ign) + _XOR_EDX + _MOV_R10D_8 + _SYSCALL
    loop = len(code)
    code += _mov_eax(_SYS_PAUSE) + _SYSCALL
    code += b"\xeb" + struct.pack("<b", loop - (len(code) + 2))
    assert len(code) == setexit
    code += _mov_eax(_SYS_RT_SIGACTION)
    code += _lea_rsi(len(code), act) + _XOR_EDX + _MOV_R10D_8 + _SYSCALL + _RET
    assert len(code) == handler
    code += _mov_eax(_SYS_EXIT_GROUP) + _XOR_EDI + _SYSCALL
    assert len(code) == act
    base = _BASE + _EHDR_SIZE + _PHDR_SIZE
    # struct kernel_sigaction on x86-64: handler, flags, restorer, mask (8 bytes each).
    code += struct.pack("<QQQQ", base + handler, _SA_RESTORER, base + handler, 0)
    assert len(code) == ign
    code += struct.pack("<QQQQ", _SIG_IGN, 0, 0, 0)
    return bytes(code), 0


def pause_elf() -> bytes:
    code, entry = _code()
    size = _EHDR_SIZE + _PHDR_SIZE + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little endian, ELF v1, SysV ABI
    ehdr = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC
        0x3E,  # EM_X86_64
        1,
        _BASE + _EHDR_SIZE + _PHDR_SIZE + entry,
        _EHDR_SIZE,  # program headers right after this header
        0,  # no section headers
        0,
        _EHDR_SIZE,
        _PHDR_SIZE,
        1,
        0,
        0,
        0,
    )
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)  # PT_LOAD, R+X
    return ehdr + phdr + code
