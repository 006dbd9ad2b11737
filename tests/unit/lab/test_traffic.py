import itertools

from tinykube.lab import traffic


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert traffic.percentile(values, 50) == 50.0
    assert traffic.percentile(values, 99) == 99.0
    assert traffic.percentile([], 99) == 0.0


def test_measure_counts_replies_and_stops_at_count() -> None:
    replies = itertools.cycle(["a", "b", "REFUSED"])
    stats = traffic.measure(lambda: next(replies), count=9, seconds=5)
    assert stats.attempts == 9
    assert stats.ok == 6
    assert stats.replies == {"a": 3, "b": 3, "REFUSED": 3}


def test_tcp_client_reports_refused_on_a_closed_port() -> None:
    assert traffic.tcp_once("127.0.0.1", 9, 1.0) in ("REFUSED", "ERROR:111")


def test_measure_pair_alternates_and_keeps_targets_apart() -> None:
    calls: list[str] = []

    def first() -> str:
        calls.append("a")
        return "a"

    def second() -> str:
        calls.append("b")
        return "b"

    a, b = traffic.measure_pair(first, second, count=80, seconds=10, batch=10)
    assert a.replies == {"a": 40}
    assert b.replies == {"b": 40}
    assert calls[:20] == ["a"] * 10 + ["b"] * 10  # batches interleave
    assert calls[20] == "a"
