import subprocess
import sys

import pytest

from tinykube import __version__
from tinykube.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand_with_its_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tinykube", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("up", "server", "node", "cri", "proxy", "image", "lab", "bench"):
        assert name in SUBCOMMANDS
        assert f"    {name} " in out or f"    {name}\n" in out


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_subcommand_is_an_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
