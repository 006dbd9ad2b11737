import os
import subprocess
import sys

import pytest

from cri.image_cli import main
from cri.images.builtin import BUSYBOX_BINARY
from cri.images.testing.builders import build_image, docker_save_tar, file_layer, oci_layout_tar


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "store")


def test_import_ls_rm_round_trip(root, tmp_path, capsys):
    image = build_image([file_layer({"a": b"1"})], docker=True)
    archive = str(tmp_path / "save.tar")
    docker_save_tar(archive, {("app:1",): image})
    assert main(["--root", root, "import", archive]) == 0
    assert "imported docker.io/library/app:1" in capsys.readouterr().out
    assert main(["--root", root, "ls"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert row.split()[:3] == ["docker.io/library/app", "1", image.config_digest[7:19]]
    assert main(["--root", root, "ls", "-q"]) == 0
    assert capsys.readouterr().out.strip() == image.config_digest
    assert main(["--root", root, "rm", "app:1"]) == 0
    assert main(["--root", root, "ls", "-q"]) == 0
    assert capsys.readouterr().out.strip() == ""


def test_import_with_name_for_unnamed_oci_layout(root, tmp_path, capsys):
    archive = str(tmp_path / "oci.tar")
    oci_layout_tar(archive, {"": build_image([file_layer({"a": b"1"})])})
    assert main(["--root", root, "import", archive]) == 1
    assert "--name" in capsys.readouterr().err
    assert main(["--root", root, "import", archive, "--name", "example.com/x:2"]) == 0
    assert "example.com/x:2" in capsys.readouterr().out


def test_errors_are_one_line_messages_and_exit_one(root, capsys):
    assert main(["--root", root, "rm", "nothing:here"]) == 1
    assert "no image 'nothing:here'" in capsys.readouterr().err
    assert main(["--root", root, "pull", "Bad:Ref"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinykube image: invalid image reference")
    assert err.count("\n") == 1


@pytest.mark.skipif(not os.path.exists(BUSYBOX_BINARY), reason="needs Debian's busybox-static")
def test_tinykube_image_builtin_through_the_top_level_cli(root):
    run = [sys.executable, "-c", "import sys; from tinykube.cli import main; sys.exit(main())", "image", "--root", root]
    built = subprocess.run([*run, "builtin"], capture_output=True, text=True, timeout=60, check=False)
    assert built.returncode == 0, built.stderr
    assert "docker.io/library/busybox:latest" in built.stdout
    listed = subprocess.run([*run, "ls"], capture_output=True, text=True, timeout=60, check=True)
    assert "registry.k8s.io/pause" in listed.stdout
