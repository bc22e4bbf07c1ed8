"""What the lab knows of itself: a Topology, one SSH session per node, and an inventory to attach it by."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from labyrinth_tui.cloud.bootstrap.inventory import Inventory, NodeEntry
from labyrinth_tui.lab.bpf.inspect import lab_bpf, node_bpf
from labyrinth_tui.lab.state import LabState
from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.topology import Node, Pod, Service, ServicePort, Topology
from labyrinth_tui.nodes.connect import NetnsConnector
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.discovery import discover
from labyrinth_tui.probes.evidence import DatapathReader


def topology_from_state(state: LabState) -> Topology:
    """What the lab knows it built (before, or without, asking the nodes over SSH)."""
    nodes = tuple(
        Node(
            name=n.name,
            address=n.address,
            role=n.role,
            pods=tuple(
                Pod(p.namespace, p.name, p.ip, p.netns, host_veth=p.host_veth, gateway=p.gateway)
                for p in state.pods
                if p.node == n.name
            ),
        )
        for n in state.nodes
    )
    services = tuple(
        Service(
            s.namespace,
            s.name,
            s.cluster_ip,
            tuple(ServicePort(p.name, p.protocol, p.port, p.target_port) for p in s.ports),
            tuple(s.endpoints),
        )
        for s in state.services
    )
    return Topology(cluster=f"lab {state.prefix}", nodes=nodes, services=services)


def sessions_for(state: LabState) -> dict[str, NodeSession]:
    """One NodeSession per lab node, reached by a socket opened inside the node's netns, host key pinned."""
    return {
        n.name: NodeSession(
            n.name,
            NetnsConnector(n.netns, n.address, n.ssh.port, n.ssh.user, n.ssh.client_key, n.ssh.host_key),
        )
        for n in state.nodes
    }


async def discover_lab(state: LabState, sessions: dict[str, NodeSession]) -> Topology:
    """The tree as the nodes tell it over SSH, pods named from the lab's spec (matched by pod IP)."""
    identities = {p.ip: (p.namespace, p.name) for p in state.pods}
    roles = {n.name: n.role for n in state.nodes}
    nodes = await discover(list(sessions.values()), identities)
    base = topology_from_state(state)
    return replace(base, nodes=tuple(replace(n, role=roles.get(n.name, n.role)) for n in nodes))


def lab_inventory(state: LabState, user: str | None = None) -> Inventory:
    """The lab as `cluster attach --ssh-inventory` takes it: each node reached inside its netns, host keys
    pinned in `<state dir>/known_hosts` (written here; `lab down` removes the folder with it).

    `user`: log in as that user with `sudo: true`, as on GCP, instead of the lab's root. The lab's sshd
    takes its one key for any user (AuthorizedKeysFile is the lab's own file), so the user only has to
    exist on the machine and have passwordless sudo."""
    known_hosts = Path(state.state_dir) / "known_hosts"
    # every lab uses 10.168.0.x: these keys go in the lab's own file, never in a shared known_hosts
    known_hosts.write_text("".join(f"{n.address} {n.ssh.host_key}\n" for n in state.nodes))
    nodes = tuple(
        NodeEntry(
            name=n.name,
            address=n.address,
            internal_ip=n.address,
            user=user or n.ssh.user,
            key=n.ssh.client_key,
            port=n.ssh.port,
            role=n.role,
            netns=n.netns,
            sudo=True if user else None,
        )
        for n in state.nodes
    )
    return Inventory(f"lab-{state.prefix}", nodes, known_hosts=str(known_hosts), ssh_config=False)


def datapath_reader(state: LabState, node: str) -> DatapathReader | None:
    """The lab's own reader of a node's programs and counters (its pinned links, its counter map), off the
    loop: bpftool 7.1 cannot place a tcx link on a device, and in the lab it would list every lab's links."""
    found = next((n for n in state.nodes if n.name == node), None)
    if found is None:
        return None

    async def read() -> NodeBpf:
        if state.datapath != "ebpf":  # the lab loaded nothing here; bpftool would list other labs' links
            return NodeBpf(found.name, "")
        return await asyncio.to_thread(node_bpf, state, found.name, found.netns)

    return read


async def lab_datapath(state: LabState) -> dict[str, NodeBpf]:
    """Every node's programs, counters and service map (nothing on an iptables lab)."""
    read = await asyncio.to_thread(lab_bpf, state)
    return {n.node: n for n in read.nodes}
