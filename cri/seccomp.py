"""The RuntimeDefault seccomp profile as a classic-BPF program (pure; loaded by `cri.linux`).

A deny-list rather than Docker's allow-list keeps the program short: it refuses, with EPERM, the
syscalls Docker's default profile withholds from unprivileged containers (kernel modules, kexec,
mount and namespace changes, bpf, perf, keyrings, clock setting, ptrace-like access to other
processes). The numbers are x86_64's; on another architecture the filter allows everything rather
than guessing numbers.
"""

from __future__ import annotations

import errno

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

# BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000

# seccomp_data offsets: nr at 0, arch at 4.
_OFF_NR = 0
_OFF_ARCH = 4

DENIED_X86_64 = {
    "uselib": 134,
    "ustat": 136,
    "sysfs": 139,
    "pivot_root": 155,
    "_sysctl": 156,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "iopl": 172,
    "ioperm": 173,
    "create_module": 174,
    "init_module": 175,
    "delete_module": 176,
    "get_kernel_syms": 177,
    "query_module": 178,
    "quotactl": 179,
    "nfsservctl": 180,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "move_pages": 279,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
}

Instruction = tuple[int, int, int, int]


def runtime_default_program(denied: dict[str, int] | None = None) -> list[Instruction]:
    """code, jt, jf, k tuples: check the arch, refuse x32 calls, EPERM each denied nr, allow the rest."""
    numbers = sorted(set((denied or DENIED_X86_64).values()))
    eperm = SECCOMP_RET_ERRNO | errno.EPERM
    prog: list[Instruction] = [
        (_LD_W_ABS, 0, 0, _OFF_ARCH),
        (_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        (_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        (_LD_W_ABS, 0, 0, _OFF_NR),
        (_JGE_K, 0, 1, X32_SYSCALL_BIT),
        (_RET_K, 0, 0, eperm),
    ]
    for nr in numbers:
        prog.append((_JEQ_K, 0, 1, nr))
        prog.append((_RET_K, 0, 0, eperm))
    prog.append((_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return prog


def evaluate(program: list[Instruction], *, arch: int, nr: int) -> int:
    """Run the program on one syscall (a tiny interpreter for the opcodes we emit), for tests."""
    acc = 0
    pc = 0
    while pc < len(program):
        code, jt, jf, k = program[pc]
        if code == _LD_W_ABS:
            acc = arch if k == _OFF_ARCH else nr
        elif code == _JEQ_K:
            pc += jt if acc == k else jf
        elif code == _JGE_K:
            pc += jt if acc >= k else jf
        elif code == _RET_K:
            return k
        else:
            raise ValueError(f"opcode {code:#x} not emitted by this module")
        pc += 1
    raise ValueError("program fell off its end")
