import pytest

from bench.cli import BENCHMARKS, main


def test_help_lists_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in BENCHMARKS:
        assert f"  {name} " in out


def test_unknown_benchmark_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["warp-speed"]) == 2
    assert "usage: tinykube bench" in capsys.readouterr().err
