from __future__ import annotations

from netproxy.backends import BACKENDS
from netproxy.cli import config_from, parse_args


def test_cli_flags_become_the_proxy_config() -> None:
    args = parse_args(
        ["--mode", "nftables", "--node-name", "n1", "--node-ip", "192.168.1.1", "--cluster-cidr", "10.244.0.0/16"]
    )
    cfg = config_from(args)
    assert args.mode == "nftables"
    assert (cfg.node_name, cfg.node_ips, cfg.cluster_cidr, cfg.localhost_nodeports) == (
        "n1",
        ("192.168.1.1",),
        "10.244.0.0/16",
        True,
    )


def test_every_mode_of_the_contract_is_offered() -> None:
    assert set(BACKENDS) == {"iptables", "nftables", "ipvs"}
