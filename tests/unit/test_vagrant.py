"""The multi-VM lab's files are checked without booting VMs: `vagrant validate` and shellcheck."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [
    *sorted(str(p) for p in (ROOT / "vagrant").glob("*.sh")),
    str(ROOT / ".ci" / "run"),
    *sorted(str(p) for p in (ROOT / "tests" / "support").glob("*.sh")),
]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (make deps installs it)")
def test_provisioning_scripts_pass_shellcheck() -> None:
    res = subprocess.run(["shellcheck", *SCRIPTS], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout


def _validate(tmp_path: Path, workers: str) -> subprocess.CompletedProcess[str]:
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(ROOT / "Vagrantfile", work / "Vagrantfile")
    shutil.copytree(ROOT / "vagrant", work / "vagrant")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "VAGRANT_HOME": str(tmp_path / "vh"),
        "TINYKUBE_WORKERS": workers,
    }
    return subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant not installed (make deps installs it)")
def test_vagrantfile_validates_with_three_workers(tmp_path: Path) -> None:
    res = _validate(tmp_path, "3")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "w3:" in res.stdout


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant not installed (make deps installs it)")
def test_vagrantfile_rejects_an_impossible_worker_count(tmp_path: Path) -> None:
    res = _validate(tmp_path, "0")
    assert res.returncode != 0
    assert "TINYKUBE_WORKERS must be between 1 and 200" in res.stdout + res.stderr
