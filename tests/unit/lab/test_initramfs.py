import gzip
import stat

from hypothesis import given
from hypothesis import strategies as st

from tinykube.lab import initramfs, kernel


def test_archive_round_trips_files_links_and_devices() -> None:
    entries = [
        initramfs.directory("bin"),
        initramfs.regular("bin/busybox", b"\x7fELF...", executable=True),
        initramfs.symlink("bin/sh", "busybox"),
        initramfs.char_device("dev/console", 5, 1),
    ]
    back = initramfs.parse_newc(gzip.decompress(initramfs.gzip_cpio(entries)))
    assert back == entries
    assert stat.S_ISCHR(back[3].mode)
    assert back[1].mode & 0o111


@given(st.lists(st.binary(max_size=37), min_size=1, max_size=5))
def test_every_member_is_four_byte_aligned(blobs: list[bytes]) -> None:
    entries = [initramfs.regular(f"f{i}", b) for i, b in enumerate(blobs)]
    blob = initramfs.cpio_newc(entries)
    assert len(blob) % 4 == 0
    assert initramfs.parse_newc(blob) == entries


def test_console_parsing_finds_output_and_exit_status() -> None:
    console = "boot noise\r\nTINYKUBE-LAB-BEGIN\r\nhello\r\nTINYKUBE-LAB-EXIT=3\r\nreboot: Power down\r\n"
    assert kernel.parse_console(console) == (3, "hello\n")
    assert kernel.parse_console("kernel panic")[0] is None


def test_module_closure_orders_dependencies_first(tmp_path) -> None:
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n"
        "kernel/net/9p/9pnet.ko:\nkernel/fs/netfs/netfs.ko:\n"
    )
    order = kernel.module_closure(str(tmp_path), ("9p",))
    assert order[-1] == "kernel/fs/9p/9p.ko"
    assert set(order[:-1]) == {"kernel/net/9p/9pnet.ko", "kernel/fs/netfs/netfs.ko"}


def test_command_script_loads_modules_then_runs_in_cwd() -> None:
    script = kernel.command_script(["echo", "a b"], cwd="/work", modules=("ip_vs",), env={"X": "1"})
    lines = script.splitlines()
    assert lines.index("modprobe ip_vs || echo 'lab: modprobe ip_vs failed'") < lines.index("echo 'a b'")
    assert "cd /work || exit 99" in lines
    assert "export X=1" in lines


def test_guest_init_binds_a_working_directory_back_over_its_scratch_tmpfs() -> None:
    # A checkout in /tmp or /root (where CI may clone) must stay visible after /tmp and /root become tmpfs.
    init = kernel._INIT
    assert "cwd=$(cat /cwd)" in init
    assert "mount -o bind /host$d /keep$d" in init
    assert init.index("mount -t tmpfs -o mode=1777 lab /host$d") < init.index("mount -o bind /keep$cwd /host$cwd")
