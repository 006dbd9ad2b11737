from __future__ import annotations

from pathlib import Path

import pytest

from tinykube.up import Cluster, Layout, available, components, parser


def test_every_path_of_a_cluster_lives_under_the_data_dir(tmp_path: Path) -> None:
    layout = Layout.under(str(tmp_path))
    for path in (layout.kubeconfig, layout.cri_socket, layout.cni_bin_dir, layout.cni_conf_dir, layout.pod_log_root):
        assert tmp_path in path.parents
    assert Layout.under(str(tmp_path), "/x/k.conf").kubeconfig == Path("/x/k.conf")


def test_components_are_wired_to_the_same_socket_kubeconfig_and_log_root(tmp_path: Path) -> None:
    args = parser().parse_args(["--data-dir", str(tmp_path), "--node-name", "n1", "--cgroup-root", "cg-1"])
    layout = Layout.under(args.data_dir)
    comps = {c.name: c.argv for c in components(args, layout)}
    assert list(comps) == ["cni-agent", "server", "cri", "node", "proxy"]
    # The CNI agent listens where the installed plugin executables look for it.
    assert comps["cni-agent"][comps["cni-agent"].index("--socket") + 1] == str(layout.cni_socket)
    node, cri = comps["node"], comps["cri"]
    assert node[node.index("--cri-endpoint") + 1] == f"unix://{layout.cri_socket}"
    assert cri[cri.index("--socket") + 1] == str(layout.cri_socket)
    assert cri[cri.index("--cgroup-root") + 1] == "cg-1"
    assert node[node.index("--log-root") + 1] == cri[cri.index("--log-root") + 1]
    assert comps["server"][comps["server"].index("--kubeconfig-out") + 1] == str(layout.kubeconfig)
    no_proxy = parser().parse_args(["--data-dir", str(tmp_path), "--no-proxy"])
    assert [c.name for c in components(no_proxy, layout)] == ["cni-agent", "server", "cri", "node"]


async def test_a_missing_component_is_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Cluster(parser().parse_args(["--data-dir", str(tmp_path)]))
    comp = cluster.components[0]
    comp.module = "tinykube.not_landed_yet"
    assert not available(comp.module)
    assert await cluster.start(comp) is False
    assert "not built yet (tinykube.not_landed_yet is missing)" in capsys.readouterr().out
    assert cluster.running == []
