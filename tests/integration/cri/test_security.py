from cri.api import api_pb2


def _linux(**sc):
    return api_pb2.LinuxContainerConfig(security_context=api_pb2.LinuxContainerSecurityContext(**sc))


def _caps(cri, cid, field):
    line = next(x for x in cri.sh(cid, "cat /proc/self/status").splitlines() if x.startswith(field))
    return int(line.split()[1], 16)


RUNTIME_DEFAULT = api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.RuntimeDefault)
UNCONFINED = api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.Unconfined)


def test_default_container_is_confined(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sleep", "60"], linux=_linux(seccomp=RUNTIME_DEFAULT, no_new_privs=True))
    # default capability set: CHOWN(0) yes, NET_ADMIN(12) and SYS_ADMIN(21) no
    eff = _caps(cri, cid, "CapEff")
    assert eff & 1
    assert not eff & (1 << 12)
    assert not eff & (1 << 21)
    assert _caps(cri, cid, "CapBnd") == eff
    assert cri.sh(cid, "grep NoNewPrivs /proc/self/status").split()[1] == "1"
    assert cri.sh(cid, "grep Seccomp: /proc/self/status").split()[1] == "2"
    # masked and read-only paths
    assert cri.sh(cid, "wc -c < /proc/timer_list").strip() == "0"
    assert "Read-only" in cri.exec(cid, "sh", "-c", "echo 1 > /proc/sys/kernel/domainname").stderr.decode()
    assert cri.sh(cid, "ls /sys/firmware | wc -l").strip() == "0"
    # seccomp refuses unshare(2) even to a capable process; with caps gone mount fails too
    r = cri.exec(cid, "unshare", "-n", "true")
    assert r.exit_code != 0
    assert b"not permitted" in r.stderr


def test_capabilities_add_and_drop(cri):
    sid, config = cri.run_pod("p")
    caps = api_pb2.Capability(add_capabilities=["NET_ADMIN"], drop_capabilities=["CHOWN"])
    cid = cri.run(sid, config, ["sleep", "60"], linux=_linux(capabilities=caps))
    eff = _caps(cri, cid, "CapEff")
    assert eff & (1 << 12)
    assert not eff & 1
    # NET_ADMIN works: bring a link down/up inside the pod netns
    assert cri.exec(cid, "ip", "link", "set", "lo", "mtu", "1500").exit_code == 0


def test_privileged_container_has_all_caps_no_seccomp_and_writable_sys(cri):
    sid, config = cri.run_pod("p")
    cid = cri.run(sid, config, ["sleep", "60"], linux=_linux(privileged=True, seccomp=RUNTIME_DEFAULT))
    eff = _caps(cri, cid, "CapEff")
    assert eff & (1 << 21)
    assert cri.sh(cid, "grep Seccomp: /proc/self/status").split()[1] == "0"
    assert " /sys sysfs rw" in cri.sh(cid, "cat /proc/mounts")


def test_run_as_user_and_group_with_readonly_rootfs(cri):
    sid, config = cri.run_pod("p")
    sc = {
        "run_as_user": api_pb2.Int64Value(value=1000),
        "run_as_group": api_pb2.Int64Value(value=3000),
        "supplemental_groups": [4000],
        "readonly_rootfs": True,
        "seccomp": UNCONFINED,
    }
    cid = cri.run(sid, config, ["sleep", "60"], linux=_linux(**sc))
    ids = cri.sh(cid, "id -u; id -g; id -G").split()
    assert ids[:2] == ["1000", "3000"]
    assert "4000" in ids[2:]
    assert _caps(cri, cid, "CapEff") == 0
    r = cri.exec(cid, "touch", "/newfile")
    assert r.exit_code != 0
    assert b"Read-only" in r.stderr
    assert cri.exec(cid, "sh", "-c", "echo x > /dev/shm/ok").exit_code == 0
    st = cri.status(cid)
    assert (st.user.linux.uid, st.user.linux.gid) == (1000, 3000)
