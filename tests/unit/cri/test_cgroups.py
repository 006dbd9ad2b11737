"""Both cgroup drivers against a fake cgroupfs under tmp_path (the files a kernel would show)."""

import os

import pytest

from cri.cgroups import Resources, V1Manager, V2Manager, detect, new_manager, shares_to_weight


def _read(path):
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def v2root(tmp_path):
    root = tmp_path / "v2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_factory_detects_v2_by_root_cgroup_controllers(v2root, tmp_path):
    assert detect(str(v2root)) == "v2"
    assert isinstance(new_manager("auto", str(v2root)), V2Manager)
    (tmp_path / "v1" / "memory").mkdir(parents=True)
    assert detect(str(tmp_path / "v1")) == "v1"
    assert isinstance(new_manager("auto", str(tmp_path / "v1")), V1Manager)
    with pytest.raises(ValueError, match="unknown cgroup driver"):
        new_manager("v3", str(v2root))


def test_v2_create_enables_controllers_in_each_ancestor(v2root):
    mgr = V2Manager(str(v2root))
    assert mgr.create("kubepods/pod1/ctr") is True
    assert set(_read(v2root / "cgroup.subtree_control").split()) == {"+cpuset", "+cpu", "+io", "+memory", "+pids"}
    assert (v2root / "kubepods/pod1/ctr").is_dir()
    assert mgr.create("kubepods/pod1/ctr") is False
    assert mgr.procs_files("kubepods/pod1/ctr") == [str(v2root / "kubepods/pod1/ctr/cgroup.procs")]


def test_v2_resources_are_written_in_v2_units(v2root):
    mgr = V2Manager(str(v2root))
    mgr.create("p/c")
    d = v2root / "p/c"
    (d / "memory.swap.max").write_text("max")
    res = Resources(
        cpu_shares=1024,
        cpu_quota=50000,
        cpu_period=100000,
        memory_limit=64 << 20,
        memory_swap_limit=96 << 20,
        pids_limit=42,
        unified={"memory.high": "50000000"},
    )
    mgr.set_resources("p/c", res)
    assert _read(d / "cpu.weight") == "39"
    assert _read(d / "cpu.max") == "50000 100000"
    assert _read(d / "memory.max") == str(64 << 20)
    assert _read(d / "memory.swap.max") == str(32 << 20)
    assert _read(d / "pids.max") == "42"
    assert _read(d / "memory.high") == "50000000"


def test_v2_refuses_unified_keys_that_escape_the_cgroup(v2root):
    mgr = V2Manager(str(v2root))
    mgr.create("p")
    with pytest.raises(ValueError, match="bad unified"):
        mgr.set_resources("p", Resources(unified={"../x": "1"}))


def test_v2_stats_and_oom_counter_parse_kernel_files(v2root):
    mgr = V2Manager(str(v2root))
    mgr.create("p")
    d = v2root / "p"
    (d / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\n")
    (d / "memory.current").write_text("1048576\n")
    (d / "memory.stat").write_text("anon 4096\ninactive_file 24576\npgfault 7\npgmajfault 1\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (d / "pids.current").write_text("3\n")
    s = mgr.stats("p")
    assert (s.cpu_usage_ns, s.memory_usage, s.memory_working_set) == (1_500_000, 1048576, 1048576 - 24576)
    assert (s.memory_rss, s.memory_limit, s.page_faults, s.pids, s.oom_kills) == (4096, 0, 7, 3, 1)


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (1, 1), (10**9, 10000)])
def test_shares_to_weight_maps_the_v1_range_onto_v2(shares, weight):
    assert shares_to_weight(shares) == weight


def test_paths_cannot_escape_the_root(v2root):
    with pytest.raises(ValueError, match="bad cgroup path"):
        V2Manager(str(v2root)).create("a/../../etc")


@pytest.fixture
def v1root(tmp_path):
    root = tmp_path / "v1"
    for ctrl in ("cpu", "cpuacct", "memory", "pids", "cpuset"):
        (root / ctrl).mkdir(parents=True)
    (root / "cpuset" / "cpuset.cpus").write_text("0-1\n")
    (root / "cpuset" / "cpuset.mems").write_text("0\n")
    return root


def test_v1_create_makes_one_dir_per_hierarchy_and_fills_cpuset(v1root):
    mgr = V1Manager(str(v1root))
    # a fresh v1 cpuset cgroup shows empty cpus/mems files
    for part in ("pod", "pod/c"):
        (v1root / "cpuset" / part).mkdir()
        (v1root / "cpuset" / part / "cpuset.cpus").write_text("")
        (v1root / "cpuset" / part / "cpuset.mems").write_text("")
    mgr.create("pod/c")
    for ctrl in ("cpu", "cpuacct", "memory", "pids"):
        assert (v1root / ctrl / "pod/c").is_dir()
    assert _read(v1root / "cpuset/pod/c/cpuset.cpus") == "0-1"
    assert len(mgr.procs_files("pod/c")) == 5
    assert mgr.oom_events_file("pod/c") == os.path.join(str(v1root / "memory"), "pod/c", "memory.oom_control")


def test_v1_resources_use_shares_cfs_and_limit_in_bytes(v1root):
    mgr = V1Manager(str(v1root))
    mgr.create("p")
    mgr.set_resources(
        "p",
        Resources(
            cpu_shares=512, cpu_quota=20000, cpu_period=100000, memory_limit=32 << 20, unified={"pids.max": "10"}
        ),
    )
    assert _read(v1root / "cpu/p/cpu.shares") == "512"
    assert _read(v1root / "cpu/p/cpu.cfs_quota_us") == "20000"
    assert _read(v1root / "cpu/p/cpu.cfs_period_us") == "100000"
    assert _read(v1root / "memory/p/memory.limit_in_bytes") == str(32 << 20)
    assert _read(v1root / "pids/p/pids.max") == "10"


def test_v1_stats_read_cpuacct_memory_and_oom_control(v1root):
    mgr = V1Manager(str(v1root))
    mgr.create("p")
    (v1root / "cpuacct/p/cpuacct.usage").write_text("123456\n")
    (v1root / "memory/p/memory.usage_in_bytes").write_text("8192\n")
    (v1root / "memory/p/memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1root / "memory/p/memory.stat").write_text("total_rss 4096\ntotal_inactive_file 4096\n")
    (v1root / "memory/p/memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    s = mgr.stats("p")
    assert (s.cpu_usage_ns, s.memory_usage, s.memory_working_set, s.memory_limit, s.oom_kills) == (
        123456,
        8192,
        4096,
        0,
        2,
    )
