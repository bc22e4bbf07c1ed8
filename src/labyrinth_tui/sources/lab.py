"""LabSource: brings the lab up if needed (with progress), then feeds the app its topology and streams."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from labyrinth_tui.lab.build import up
from labyrinth_tui.lab.spec import LabSpec, article_spec
from labyrinth_tui.lab.state import LabState
from labyrinth_tui.model.progress import Step
from labyrinth_tui.model.topology import Node, Pod, Service, ServicePort, Topology
from labyrinth_tui.sources.base import Emit, ProgressEvent, StreamSpec, TopologyEvent


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


@dataclass
class LabSource:
    spec: LabSpec
    name: str = "lab"
    state: LabState | None = None

    @classmethod
    def article(cls, prefix: str = "labyrinth", pods_per_node: int = 0) -> LabSource:
        return cls(article_spec(prefix=prefix, pods_per_node=pods_per_node))

    async def start(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()

        def progress(step: Step) -> None:
            # called from the builder's thread: hand the step to the loop, never touch anything here
            loop.call_soon_threadsafe(emit, ProgressEvent(step))

        self.state = await asyncio.to_thread(up, self.spec, progress)
        emit(TopologyEvent(topology_from_state(self.state)))

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        raise NotImplementedError("live streams arrive with the capture issue")

    async def close_stream(self, spec: StreamSpec) -> None:
        return None

    async def close(self) -> None:
        return None
