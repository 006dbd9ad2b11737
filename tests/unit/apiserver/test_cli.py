"""`tinykube server` flags: contract 2's names and defaults, bad values refused up front, the controller
flags handed to the controller manager, and `tinykube server token create`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlplane import cli
from controlplane.cli import parser
from controlplane.controllers.config import ControllerConfig


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


def test_controller_flags_reach_the_controller_manager(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def fake_serve(cfg: Any, **kwargs: Any) -> None:
        seen.update(kwargs)

    monkeypatch.setattr(cli, "serve", fake_serve)
    argv = ["--data-dir", str(tmp_path), "--node-monitor-grace", "7", "--pod-eviction-timeout", "12"]
    assert cli.main([*argv, "--no-leader-elect"]) == 0
    assert seen["controller_config"] == ControllerConfig(node_monitor_grace=7.0, default_toleration_seconds=12)
    assert seen["leader_elect"] is False
    assert cli.main(["--data-dir", str(tmp_path)]) == 0
    assert seen["controller_config"] == ControllerConfig()
    assert seen["leader_elect"] is True


def test_non_positive_durations_are_refused() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--node-monitor-grace", "0"])


def test_token_create_prints_the_join_token_of_the_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "node-token").write_text("abcdef.0123456789abcdef\n")
    assert cli.main(["token", "create", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "abcdef.0123456789abcdef\n"


def test_token_create_without_a_started_server_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["token", "create", "--data-dir", str(tmp_path / "none")]) == 1
    assert "has the server started once" in capsys.readouterr().err
