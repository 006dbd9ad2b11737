"""`tinykube server` flags: contract 2's names and defaults, and bad values refused up front."""

from __future__ import annotations

import pytest

from controlplane.cli import parser


def test_defaults_follow_the_team_contract() -> None:
    args = parser().parse_args([])
    assert args.data_dir == "/var/lib/tinykube/controlplane"
    assert args.kubeconfig_out == "/etc/tinykube/admin.kubeconfig"
    assert args.listen == ("127.0.0.1", 6443)
    assert args.storage == "sqlite"
    assert args.service_cidr == "10.96.0.0/16"
    assert not args.no_controllers


def test_listen_accepts_bracketed_ipv6() -> None:
    assert parser().parse_args(["--listen", "[::1]:7443"]).listen == ("::1", 7443)


@pytest.mark.parametrize("argv", [["--listen", "nohost"], ["--service-cidr", "10.0.0.0/30"], ["--storage", "redis"]])
def test_bad_flags_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(argv)
