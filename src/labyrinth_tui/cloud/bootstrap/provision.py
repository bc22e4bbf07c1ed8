"""provision(): an inventory's VMs → Kubernetes + Cilium with the journey's workloads, ready to attach."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from labyrinth_tui.cloud.bootstrap.inventory import Inventory, InventoryError
from labyrinth_tui.cloud.bootstrap.masking import Masker
from labyrinth_tui.cloud.bootstrap.phases import Progress
from labyrinth_tui.cloud.bootstrap.run import (
    BootstrapFailed,
    BootstrapNode,
    BootstrapResult,
    Versions,
    bootstrap,
    write_private,
)
from labyrinth_tui.cloud.kube.client import KubeClient, load_kubeconfig
from labyrinth_tui.cloud.kube.manifests import DEFAULT_IMAGE
from labyrinth_tui.cloud.kube.tunnel import API_SERVER_NAME, ApiTunnel, api_endpoint
from labyrinth_tui.cloud.kube.workloads import JourneyPods, deploy_journey
from labyrinth_tui.nodes.connect import HostKeyPrompt
from labyrinth_tui.nodes.session import NodeSession

INVENTORY_NAME: Final = "inventory.yaml"


@dataclass
class Provisioned:
    """What a user needs next: where admin.conf and the attach inventory are, what got deployed."""

    bootstrap: BootstrapResult
    config_dir: Path
    inventory: Path
    pods: JourneyPods | None = None
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def attach_command(self) -> str:
        kubeconfig = self.bootstrap.admin_conf or self.config_dir / "admin.conf"
        return f"labyrinth cluster attach --kubeconfig {kubeconfig} --ssh-inventory {self.inventory}"


def bootstrap_nodes(
    inventory: Inventory, sessions: dict[str, NodeSession]
) -> tuple[BootstrapNode, list[BootstrapNode]]:
    """The inventory as bootstrap's nodes; every node needs its internal IP (the cluster's address)."""
    nodes = []
    for entry in (inventory.control_plane, *inventory.workers):
        ip = entry.internal_ip or entry.address
        if ip is None:
            raise InventoryError(
                f"{inventory.source}: node {entry.name} needs internal_ip (the cluster's address)"
            )
        try:
            nodes.append(BootstrapNode(entry.name, ip, sessions[entry.name], sudo=entry.needs_sudo))
        except ValueError as exc:
            raise InventoryError(f"{inventory.source}: {exc}") from None
    return nodes[0], nodes[1:]


async def provision(
    inventory: Inventory,
    config_dir: Path,
    progress: Progress,
    *,
    ask_host_key: HostKeyPrompt | None = None,
    versions: Versions | None = None,
    image: str = DEFAULT_IMAGE,
    deploy: bool = True,
) -> Provisioned:
    """bootstrap() over SSH, then (through an SSH tunnel to the API server) the journey's workloads.

    Writes config_dir/admin.conf (0600) and config_dir/inventory.yaml (the nodes, with api_via the
    control plane) for `labyrinth cluster attach`. BootstrapFailed still leaves both written when the
    control plane is up, so attaching shows what did join.
    """
    if len(inventory.nodes) < 2:
        raise InventoryError(f"{inventory.source}: give a control plane and at least one worker")
    masker = Masker()
    sessions = {
        n.name: NodeSession(n.name, inventory.connector(n, ask_host_key=ask_host_key))
        for n in inventory.nodes
    }
    control, workers = bootstrap_nodes(inventory, sessions)
    attach = Inventory(
        inventory.cluster,
        inventory.nodes,
        inventory.api_via or control.name,
        inventory.known_hosts,
        inventory.ssh_config,
    )
    inventory_path = config_dir / INVENTORY_NAME
    failed: dict[str, str] = {}
    try:
        try:
            result = await bootstrap(
                control, workers, progress, config_dir=config_dir, versions=versions, masker=masker
            )
        except BootstrapFailed as exc:
            result, failed = exc.result, dict(exc.result.failed)
            write_private(inventory_path, attach.to_yaml())
            raise
        write_private(inventory_path, attach.to_yaml())
    finally:
        for session in sessions.values():
            with contextlib.suppress(Exception):
                await session.close()
    done = Provisioned(result, config_dir, inventory_path, failed=failed)
    if deploy and result.admin_conf is not None:
        done.pods = await deploy_through_tunnel(
            attach, result.admin_conf, progress, image=image, ask_host_key=ask_host_key
        )
    return done


async def deploy_through_tunnel(
    inventory: Inventory,
    admin_conf: Path,
    progress: Progress,
    *,
    image: str = DEFAULT_IMAGE,
    ask_host_key: HostKeyPrompt | None = None,
) -> JourneyPods:
    """The journey's namespaces, manifests and CoreDNS restart, over an SSH tunnel to the API server."""
    config = load_kubeconfig(admin_conf)
    host, port = api_endpoint(config)
    via = inventory.node(inventory.api_via or inventory.control_plane.name) or inventory.control_plane
    certs = admin_conf.parent / "certs"
    certs.mkdir(mode=0o700, exist_ok=True)
    async with ApiTunnel(inventory.connector(via, ask_host_key=ask_host_key), via.name, host, port) as tunnel:
        kube = KubeClient.from_config(
            config, server=tunnel.url, tls_server_name=API_SERVER_NAME, temp_dir=certs
        )
        try:
            return await deploy_journey(kube, progress, image=image)
        finally:
            kube.close()
