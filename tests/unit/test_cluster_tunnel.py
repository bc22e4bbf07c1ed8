"""After bootstrap: admin.conf, an SSH local forward to node-0:6443 and the journey deployed through it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from labyrinth_tui.cloud.bootstrap.run import bootstrap
from labyrinth_tui.cloud.kube.client import KubeClient, load_kubeconfig
from labyrinth_tui.cloud.kube.errors import KubeTimeout, KubeUnreachable
from labyrinth_tui.cloud.kube.tunnel import API_SERVER_NAME, ApiTunnel, api_endpoint
from labyrinth_tui.cloud.kube.workloads import deploy_journey
from labyrinth_tui.nodes.errors import NodeUnreachable
from tests.fakes.cluster_vms import fake_vms
from tests.fakes.kube_api import KubeApiStub


async def test_bootstrap_then_the_journey_through_the_api_tunnel(tmp_path: Path) -> None:
    # the API server's certificate, like kubeadm's, does not name 127.0.0.1; nodes start unlabelled
    async with (
        KubeApiStub(tmp_path / "pki", loopback_san=False, labelled=False) as api,
        fake_vms(tmp_path) as vms,
    ):
        vms.sandbox.write_shared("admin.conf", api.pki.admin_conf_text("https://10.168.0.2:6443"))
        # node-0's sshd relays 10.168.0.2:6443 (internal only) to the stub; nothing leaves 127.0.0.1
        vms["node-0"].forwards[("10.168.0.2", 6443)] = ("127.0.0.1", api.port)
        config_dir = tmp_path / "config"
        async with vms.nodes() as (control, workers):
            result = await bootstrap(control, workers, lambda step: None, config_dir=config_dir)
        assert result.admin_conf is not None
        config = load_kubeconfig(result.admin_conf)
        assert api_endpoint(config) == ("10.168.0.2", 6443)

        # the labels bootstrap gave (through node-0's kubectl) are what the scheduler sees
        for name, label in result.labels.items():
            api.cluster.node_labels[name]["nodelabel"] = label

        async with ApiTunnel(vms.connector(vms["node-0"]), "node-0", "10.168.0.2", 6443) as tunnel:
            assert tunnel.url.startswith("https://127.0.0.1:")
            certs = config_dir / "certs"
            certs.mkdir(mode=0o700)
            kube = KubeClient.from_config(
                config, server=tunnel.url, tls_server_name=API_SERVER_NAME, temp_dir=certs
            )
            pods = await deploy_journey(kube, lambda step: None, timeout=5)
            kube.close()
        assert (pods.client.node, pods.server.node) == ("node-1", "node-2")
        assert vms["node-0"].forwarded and set(vms["node-0"].forwarded) == {("10.168.0.2", 6443)}
        # the client library unpacked the admin's key as a file: it stays in the private folder
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in certs.iterdir())


async def test_without_the_labels_the_pods_never_run(tmp_path: Path) -> None:
    async with KubeApiStub(tmp_path / "pki", labelled=False) as api:
        kube = KubeClient.from_config(api.admin_conf(), temp_dir=tmp_path)
        with pytest.raises(KubeTimeout, match="didn't match Pod's node affinity/selector"):
            await deploy_journey(kube, lambda step: None, timeout=0.5)


async def test_a_tunnel_to_a_node_that_is_down_is_a_node_error(tmp_path: Path) -> None:
    async with fake_vms(tmp_path) as vms:
        connector = vms.connector(vms["node-0"])
        await vms["node-0"].close()
        with pytest.raises(NodeUnreachable) as info:
            async with ApiTunnel(connector, "node-0", "10.168.0.2"):
                pass
        assert info.value.node == "node-0" and "cannot connect" in info.value.reason


async def test_a_forward_the_node_refuses_fails_the_api_call_clearly(tmp_path: Path) -> None:
    async with KubeApiStub(tmp_path / "pki") as api, fake_vms(tmp_path) as vms:
        # this node relays nothing: its sshd refuses the direct-tcpip channel, as a wrong address would
        async with ApiTunnel(vms.connector(vms["node-0"]), "node-0", "10.168.0.2") as tunnel:
            kube = KubeClient.from_config(
                api.admin_conf(), server=tunnel.url, tls_server_name=API_SERVER_NAME, temp_dir=tmp_path
            )
            with pytest.raises(KubeUnreachable) as info:
                await kube.nodes()
        assert "list nodes" in str(info.value) and tunnel.url in str(info.value)
        assert not vms["node-0"].forwarded
