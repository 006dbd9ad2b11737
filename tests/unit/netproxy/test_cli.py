from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

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


def test_daemon_stops_on_sigterm_while_the_api_server_is_unreachable(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    argv = [sys.executable, "-m", "tinykube", "proxy", "--kubeconfig", str(kubeconfig), "--mode", "nftables"]
    argv += ["--no-localhost-nodeports", "--node-name", "n1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)  # started, retrying the list against a closed port
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
