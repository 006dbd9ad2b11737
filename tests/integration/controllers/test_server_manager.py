from __future__ import annotations

from pathlib import Path

from controlplane.client import KubeClient
from controlplane.controllers.testing.fake_kubelet import FakeKubelet
from controlplane.resources import DEPLOYMENTS, LEASES
from controlplane.testing.server import start_server
from tests.integration.controllers.conftest import eventually
from tests.integration.controllers.test_workloads import deployment


async def test_tinykube_server_runs_the_controllers_and_releases_the_lease_on_stop(tmp_path: Path) -> None:
    server = start_server(tmp_path, controllers=True)
    client = KubeClient.from_kubeconfig(server.kubeconfig)
    kubelet = FakeKubelet(client)
    try:
        await kubelet.start()
        await kubelet.add_node("n1")
        await client.create(DEPLOYMENTS, deployment("srv", 2), "default")

        async def available() -> bool:
            st = (await client.get(DEPLOYMENTS, "srv", "default")).get("status") or {}
            return st.get("availableReplicas") == 2

        await eventually(available, what="deployment available via the server's own manager")
        lease = await client.get(LEASES, "tinykube-controller-manager", "kube-system")
        assert lease["spec"]["holderIdentity"]
        await kubelet.stop()
        server.stop()
        assert server.process is not None
        assert server.process.returncode == 0, server.log_tail()
        server.start()
        lease = await client.get(LEASES, "tinykube-controller-manager", "kube-system")
        # Released on the clean stop (or already re-taken by the restarted server's manager).
        assert lease["spec"].get("holderIdentity") is None or lease["spec"].get("leaseTransitions", 0) >= 1
    finally:
        await kubelet.stop()
        await client.close()
        server.stop()
