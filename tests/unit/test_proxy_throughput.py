"""The throughput benchmark's pure parts: the objects it programs and how it reports."""

from pathlib import Path

from bench import proxy_throughput as bench


def test_objects_give_each_service_ten_endpoints_and_a_distinct_cluster_ip() -> None:
    state = bench.desired_state(300)
    assert len(state.services) == 300
    ips = {port.cluster_ip for ports in state.services.values() for port in ports}
    assert len(ips) == 300
    (port,) = state.services["bench/svc-299"]
    assert len(state.endpoints_of(port)) == bench.ENDPOINTS


def test_shift_changes_one_endpoint_of_the_last_service_only() -> None:
    before, after = bench.desired_state(5), bench.desired_state(5, shift=1)
    changed = [k for k in before.services if before.endpoints[k] != after.endpoints[k]]
    assert changed == ["bench/svc-4"]


def test_rows_round_trip_through_the_guest_console_and_the_csv(tmp_path: Path) -> None:
    rows = [
        bench.Row("iptables", 10, 0.1, 0.01, 900.0, 450.0, 1.0, 2.0, 3.0, 50.0),
        bench.Row("ipvs", 10, 0.1, 0.01, 900.0, 880.0, 1.0, 1.1, 2.0, 40.0),
    ]
    console = "noise\n" + "\n".join(bench.ROW_MARKER + __import__("json").dumps(r.__dict__) for r in rows) + "\n"
    assert bench.parse_rows(console) == rows
    bench.write_csv(rows, tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_text().splitlines()[0].startswith("mode,services,sync_s")
    lines = bench.ratios(rows)
    assert "last/first rate  0.50" in lines[0]
    assert "vs iptables  1.96x" in lines[1]


def test_plot_writes_a_png(tmp_path: Path) -> None:
    rows = [
        bench.Row(m, n, 0.1 * n, 0.01, 900.0, 900.0 / (n if m == "iptables" else 1), 1.0, 1.0, 2.0, 1.0)
        for m in bench.MODES
        for n in (1, 100, 1000)
    ]
    bench.plot(rows, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
