import pytest

from cri import validate
from cri.api import api_pb2
from cri.errors import InvalidArgument
from cri.testing.fakes import FakeImageConfig


def _sandbox(**kw):
    base = {"metadata": api_pb2.PodSandboxMetadata(name="p", namespace="ns", uid="u")}
    base.update(kw)
    return api_pb2.PodSandboxConfig(**base)


def test_valid_sandbox_config_passes():
    validate.check_sandbox_config(_sandbox(hostname="web-0"), "")


@pytest.mark.parametrize(
    ("config", "handler", "message"),
    [
        (api_pb2.PodSandboxConfig(), "", "metadata is required"),
        (_sandbox(metadata=api_pb2.PodSandboxMetadata(name="p", namespace="ns")), "", "metadata.uid"),
        (_sandbox(), "kata", "unknown runtime handler"),
        (_sandbox(hostname="bad_host!"), "", "not a valid hostname"),
        (_sandbox(linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent="/a/../../b")), "", "cgroup_parent"),
        (_sandbox(dns_config=api_pb2.DNSConfig(servers=["dns.example"])), "", "not an IP address"),
        (_sandbox(port_mappings=[api_pb2.PortMapping(container_port=80, host_port=70000)]), "", "bad port"),
    ],
)
def test_malformed_sandbox_configs_say_what_is_wrong(config, handler, message):
    with pytest.raises(InvalidArgument, match=message):
        validate.check_sandbox_config(config, handler)


def test_resolv_conf_has_servers_search_and_options():
    dns = api_pb2.DNSConfig(servers=["10.96.0.10"], searches=["a.svc", "svc"], options=["ndots:5"])
    assert validate.resolv_conf(dns) == "nameserver 10.96.0.10\nsearch a.svc svc\noptions ndots:5\n"
    assert validate.resolv_conf(api_pb2.DNSConfig()) == ""


def _container(**kw):
    return api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name="c"), **kw)


IMAGE = FakeImageConfig(entrypoint=("/entry",), cmd=("default-arg",), env=("PATH=/img/bin", "A=1"), working_dir="/work")


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ([], [], ["/entry", "default-arg"]),
        (["/bin/sh"], [], ["/bin/sh"]),
        ([], ["x"], ["/entry", "x"]),
        (["/bin/sh", "-c"], ["echo"], ["/bin/sh", "-c", "echo"]),
    ],
)
def test_command_and_args_follow_kubernetes_over_entrypoint_and_cmd(command, args, expected):
    assert validate.process(_container(command=command, args=args), IMAGE, []).args == expected


def test_env_overrides_image_env_and_cwd_comes_from_image():
    proc = validate.process(_container(envs=[api_pb2.KeyValue(key="A", value="2")]), IMAGE, [])
    assert proc.env == ["PATH=/img/bin", "A=2"]
    assert proc.cwd == "/work"


def test_missing_path_gets_the_default_path():
    proc = validate.process(_container(command=["x"]), FakeImageConfig(env=()), [])
    assert proc.env[0].startswith("PATH=/usr/local/sbin")


def test_user_names_resolve_through_the_images_passwd_and_group(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    layers = [str(tmp_path)]
    assert validate.resolve_user("app", layers) == (1000, 1001)
    assert validate.resolve_user("app:staff", layers) == (1000, 50)
    assert validate.resolve_user("1000", layers) == (1000, 1001)
    assert validate.resolve_user("42:7", layers) == (42, 7)
    with pytest.raises(InvalidArgument, match="nobody"):
        validate.resolve_user("nobody", layers)


def _sc(**kw):
    return api_pb2.LinuxContainerConfig(security_context=api_pb2.LinuxContainerSecurityContext(**kw))


def test_run_as_user_group_and_supplemental_groups():
    proc = validate.process(
        _container(
            command=["x"],
            linux=_sc(
                run_as_user=api_pb2.Int64Value(value=7),
                run_as_group=api_pb2.Int64Value(value=8),
                supplemental_groups=[9],
            ),
        ),
        IMAGE,
        [],
    )
    assert (proc.uid, proc.gid, proc.groups) == (7, 8, [8, 9])


def test_run_as_group_without_a_user_is_refused():
    with pytest.raises(InvalidArgument, match="run_as_group needs run_as_user"):
        validate.process(_container(command=["x"], linux=_sc(run_as_group=api_pb2.Int64Value(value=8))), IMAGE, [])


def test_no_command_anywhere_is_refused():
    with pytest.raises(InvalidArgument, match="no command"):
        validate.process(_container(), FakeImageConfig(cmd=()), [])


def test_seccomp_profiles():
    rd = api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.RuntimeDefault)
    unconfined = api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.Unconfined)
    local = api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.Localhost, localhost_ref="/x.json")
    assert validate.seccomp_enabled(api_pb2.LinuxContainerSecurityContext(seccomp=rd)) is True
    assert validate.seccomp_enabled(api_pb2.LinuxContainerSecurityContext(seccomp=unconfined)) is False
    assert validate.seccomp_enabled(api_pb2.LinuxContainerSecurityContext()) is False
    assert validate.seccomp_enabled(api_pb2.LinuxContainerSecurityContext(seccomp=rd, privileged=True)) is False
    with pytest.raises(InvalidArgument, match="Localhost"):
        validate.seccomp_enabled(api_pb2.LinuxContainerSecurityContext(seccomp=local))


def test_mounts_need_an_existing_host_path_and_absolute_target(tmp_path):
    ok = api_pb2.Mount(container_path="/data", host_path=str(tmp_path), readonly=True, propagation=1)
    [spec] = validate.mounts(_container(mounts=[ok]))
    assert (spec.source, spec.target, spec.readonly, spec.propagation) == (str(tmp_path), "/data", True, "rslave")
    with pytest.raises(InvalidArgument, match="does not exist"):
        validate.mounts(_container(mounts=[api_pb2.Mount(container_path="/d", host_path=str(tmp_path / "nope"))]))
    with pytest.raises(InvalidArgument, match="must be absolute"):
        validate.mounts(_container(mounts=[api_pb2.Mount(container_path="d", host_path=str(tmp_path))]))


def test_log_path_must_stay_inside_the_log_directory():
    assert validate.log_path("/var/log/pods/x", "c/0.log", "/logs", "sb", "ct") == "/var/log/pods/x/c/0.log"
    assert validate.log_path("", "", "/logs", "sb", "ct") == "/logs/sb/ct.log"
    with pytest.raises(InvalidArgument, match="log_path"):
        validate.log_path("/var/log/pods/x", "../../etc/passwd", "/logs", "sb", "ct")


def test_resources_reject_negative_values_and_take_pids_from_unified():
    res = validate.resources(
        api_pb2.LinuxContainerResources(cpu_shares=2, unified={"pids.max": "64"}), default_pids_limit=9
    )
    assert (res.pids_limit, res.unified) == (64, {})
    assert validate.resources(api_pb2.LinuxContainerResources(), default_pids_limit=9).pids_limit == 9
    with pytest.raises(InvalidArgument, match="memory_limit_in_bytes must not be negative"):
        validate.resources(api_pb2.LinuxContainerResources(memory_limit_in_bytes=-5))


@pytest.mark.parametrize(("name", "number"), [("", 15), ("SIGQUIT", 3), ("quit", 3), ("9", 9), ("SIGNOPE", 15)])
def test_image_stop_signal_names_and_numbers(name, number):
    from cri.container import stop_signal

    assert stop_signal(name) == number


def test_exec_exit_status_is_the_metav1_status_kubectl_reads():
    from cri.streaming import exit_status

    assert exit_status(0) == {"metadata": {}, "status": "Success"}
    failed = exit_status(3)
    assert (failed["status"], failed["reason"]) == ("Failure", "NonZeroExitCode")
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


def test_sysctls_must_be_namespaced_and_owned_by_the_pod():
    ok = _sandbox(linux=api_pb2.LinuxPodSandboxConfig(sysctls={"net.core.somaxconn": "1024", "kernel/shmmax": "1"}))
    assert validate.sysctls(ok) == {"kernel.shmmax": "1", "net.core.somaxconn": "1024"}
    with pytest.raises(InvalidArgument, match="not namespaced"):
        validate.sysctls(_sandbox(linux=api_pb2.LinuxPodSandboxConfig(sysctls={"vm.overcommit_memory": "1"})))
    host_net = api_pb2.LinuxPodSandboxConfig(
        sysctls={"net.core.somaxconn": "1"},
        security_context=api_pb2.LinuxSandboxSecurityContext(namespace_options=api_pb2.NamespaceOption(network=2)),
    )
    with pytest.raises(InvalidArgument, match="own net namespace"):
        validate.sysctls(_sandbox(linux=host_net))
