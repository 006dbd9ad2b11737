import errno

import pytest

from cri import caps, seccomp
from cri.errors import InvalidArgument


def test_default_capabilities_match_the_oci_default_set():
    got = caps.effective_set(privileged=False)
    assert got == caps.DEFAULT_CAPABILITIES
    assert "SYS_ADMIN" not in got
    assert "NET_ADMIN" not in got


def test_add_and_drop_accept_cap_prefix_and_case():
    got = caps.effective_set(privileged=False, add=["CAP_NET_ADMIN", "sys_time"], drop=["NET_RAW"])
    assert {"NET_ADMIN", "SYS_TIME"} <= got
    assert "NET_RAW" not in got


def test_drop_all_then_add_keeps_only_the_added():
    assert caps.effective_set(privileged=False, add=["NET_BIND_SERVICE"], drop=["ALL"]) == {"NET_BIND_SERVICE"}


def test_privileged_gets_every_capability():
    assert caps.effective_set(privileged=True, drop=["ALL"]) == set(caps.CAPABILITIES)


def test_unknown_capability_is_invalid_argument():
    with pytest.raises(InvalidArgument, match="CAP_FLY"):
        caps.effective_set(privileged=False, add=["CAP_FLY"])


def test_mask_sets_the_kernel_bit_numbers():
    assert caps.to_mask(["CHOWN", "SYS_ADMIN"]) == (1 << 0) | (1 << 21)


EPERM = seccomp.SECCOMP_RET_ERRNO | errno.EPERM


@pytest.mark.parametrize("name", ["mount", "unshare", "setns", "kexec_load", "bpf", "init_module", "keyctl"])
def test_runtime_default_refuses_dangerous_syscalls_with_eperm(name):
    prog = seccomp.runtime_default_program()
    nr = seccomp.DENIED_X86_64[name]
    assert seccomp.evaluate(prog, arch=seccomp.AUDIT_ARCH_X86_64, nr=nr) == EPERM


@pytest.mark.parametrize("nr", [0, 1, 2, 59, 60, 231])  # read write open execve exit exit_group
def test_runtime_default_allows_ordinary_syscalls(nr):
    prog = seccomp.runtime_default_program()
    assert seccomp.evaluate(prog, arch=seccomp.AUDIT_ARCH_X86_64, nr=nr) == seccomp.SECCOMP_RET_ALLOW


def test_x32_syscalls_are_refused_and_other_architectures_pass():
    prog = seccomp.runtime_default_program()
    assert seccomp.evaluate(prog, arch=seccomp.AUDIT_ARCH_X86_64, nr=seccomp.X32_SYSCALL_BIT | 1) == EPERM
    assert seccomp.evaluate(prog, arch=0x40000028, nr=165) == seccomp.SECCOMP_RET_ALLOW


def test_program_fits_the_kernel_limit_of_4096_instructions():
    assert len(seccomp.runtime_default_program()) < 4096
