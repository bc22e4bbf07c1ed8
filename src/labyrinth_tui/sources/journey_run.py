"""The article's traffic on the lab, with every hop captured first: ncat server in wrk-2, client in wrk-1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Protocol

from labyrinth_tui.journey.article import CLIENT_POD, HOP_FILTER, PAYLOAD, PORT, SERVER_POD, SERVICE
from labyrinth_tui.journey.report import JourneyReport, PodSeen, StreamReady
from labyrinth_tui.journey.roles import InterfaceRole, Role
from labyrinth_tui.journey.stitch import stitch
from labyrinth_tui.lab.state import LabState, PodState
from labyrinth_tui.lab.traffic import TrafficError, exchange
from labyrinth_tui.model.evidence import NodeEvidence, diff_evidence
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.evidence import gather_evidence
from labyrinth_tui.sources.base import (
    Emit,
    JourneyError,
    PacketBatch,
    SourceEvent,
    StreamSpec,
    StreamState,
    StreamStatus,
)
from labyrinth_tui.sources.captures import CaptureStreams
from labyrinth_tui.sources.lab_nodes import sessions_for, topology_from_state


class Captures(Protocol):
    """What the run needs of captures (CaptureStreams is one): open runs until close(spec)."""

    async def open(self, spec: StreamSpec, emit: Emit) -> None: ...

    async def close(self, spec: StreamSpec) -> None: ...


def _pod(state: LabState, name: str) -> PodState:
    found = next((p for p in state.pods if p.name.startswith(name + "-")), None)
    if found is None:
        raise JourneyError(f"no pod {name!r} in lab {state.prefix!r}")
    return found


def hop_specs(state: LabState) -> tuple[StreamSpec, ...]:
    """The article's six hops: client lxc, cilium_vxlan, ens4 on its node; ens4, cilium_vxlan, server lxc."""
    client, server = _pod(state, CLIENT_POD), _pod(state, SERVER_POD)
    return tuple(
        StreamSpec(node, iface, HOP_FILTER)
        for node, iface in (
            (client.node, client.host_veth),
            (client.node, "cilium_vxlan"),
            (client.node, "ens4"),
            (server.node, "ens4"),
            (server.node, "cilium_vxlan"),
            (server.node, server.host_veth),
        )
    )


def hop_roles(state: LabState) -> dict[tuple[str, str], InterfaceRole]:
    roles: dict[tuple[str, str], InterfaceRole] = {}
    for node in state.nodes:
        roles[(node.name, "ens4")] = InterfaceRole(Role.UNDERLAY, node_ip=node.address)
        roles[(node.name, "cilium_vxlan")] = InterfaceRole(Role.OVERLAY)
    for pod in state.pods:
        roles[(pod.node, pod.host_veth)] = InterfaceRole(Role.HOST_VETH, pod_ip=pod.ip)
    return roles


class _Collector:
    """What the streams emitted: their states (with a wakeup per change) and the packets they saw."""

    def __init__(self, forward: Callable[[SourceEvent], None] | None) -> None:
        self.states: dict[StreamSpec, StreamStatus] = {}
        self.packets: dict[StreamSpec, list[PacketSummary]] = {}
        self.changed = asyncio.Event()
        self.forward = forward

    def __call__(self, event: SourceEvent) -> None:
        if isinstance(event, StreamStatus):
            self.states[event.spec] = event
        elif isinstance(event, PacketBatch):
            self.packets.setdefault(event.spec, []).extend(event.packets)
        self.changed.set()
        if self.forward is not None:
            self.forward(event)

    async def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    def count(self) -> int:
        return sum(len(v) for v in self.packets.values())


async def _pod_has_veth(session: NodeSession, veth: str) -> bool:
    result = await session.run(["ip", "-br", "link", "show", "dev", veth], check=False)
    return result.exit_status == 0 and result.stdout.startswith(veth)


async def run_journey(
    state: LabState,
    *,
    captures: Captures | None = None,
    sessions: Mapping[str, NodeSession] | None = None,
    emit: Callable[[SourceEvent], None] | None = None,
    payload: str = PAYLOAD,
    ready_timeout: float = 10.0,
    settle: float = 0.3,
) -> JourneyReport:
    """Captures open and proven on all six hops, evidence before, the traffic, evidence after, stitched."""
    own_sessions = sessions is None
    nodes = dict(sessions) if sessions is not None else dict(sessions_for(state))
    caps = captures if captures is not None else CaptureStreams(nodes, tag=state.prefix)
    client, server = _pod(state, CLIENT_POD), _pod(state, SERVER_POD)
    specs = hop_specs(state)
    collector = _Collector(emit)
    problems: list[str] = []
    proven: dict[StreamSpec, StreamStatus] = {}
    involved = [client.node, server.node]
    # each open() runs until its close(): one task per hop, all started before any traffic
    opened = [asyncio.create_task(caps.open(spec, collector), name=f"journey {spec.key}") for spec in specs]
    try:

        def settled() -> bool:
            return all(
                (s := collector.states.get(spec)) is not None and s.state is not StreamState.STARTING
                for spec in specs
            )

        await collector.wait(settled, ready_timeout)
        not_ready = [
            f"{spec.key}: {(s.reason or s.state) if (s := collector.states.get(spec)) else 'no status'}"
            for spec in specs
            if (st := collector.states.get(spec)) is None or st.state is not StreamState.CAPTURING
        ]
        if not_ready:
            raise JourneyError("captures not proven before the traffic: " + "; ".join(not_ready))
        proven = dict(collector.states)  # what each stream was when the traffic started
        before = await asyncio.gather(*(gather_evidence(nodes[n]) for n in involved))
        try:
            received = await exchange(
                client_netns=client.netns, client_name=client.name,
                server_netns=server.netns, server_name=server.name,
                target=SERVICE, port=PORT, payload=payload, timeout=10.0,
            )  # fmt: skip
        except TrafficError as exc:
            raise JourneyError(str(exc)) from None
        if received != payload:
            problems.append(f"the server read {received!r}, not {payload!r}")
        # the last ACK and the FINs are on the wire by now; wait until the streams stop moving
        seen = -1
        loop = asyncio.get_running_loop()
        end = loop.time() + 3.0
        while collector.count() != seen and loop.time() < end:
            seen = collector.count()
            await collector.wait(lambda n=seen: collector.count() != n, settle)  # type: ignore[misc]
        after = await asyncio.gather(*(gather_evidence(nodes[n]) for n in involved))
        veths = await asyncio.gather(
            _pod_has_veth(nodes[client.node], client.host_veth),
            _pod_has_veth(nodes[server.node], server.host_veth),
        )
    except NodeError as exc:
        raise JourneyError(f"{exc.node}: {exc.reason}") from None
    finally:
        await asyncio.gather(*(caps.close(spec) for spec in specs), return_exceptions=True)
        await asyncio.gather(*opened, return_exceptions=True)
        if own_sessions:
            await asyncio.gather(*(s.close() for s in nodes.values()), return_exceptions=True)
    topology = topology_from_state(state)
    observations = [p for spec in specs for p in collector.packets.get(spec, ())]
    stitched = stitch(
        observations,
        topology.services,
        hop_roles(state),
        captured=[(s.node, s.interface) for s in specs],
        reference_node=client.node,
    )
    svc = next(s for s in topology.services if s.name == SERVER_POD)
    return JourneyReport(
        cluster=topology.cluster,
        service=SERVICE,
        service_ip=svc.cluster_ip,
        service_port=PORT,
        client=_seen(client, veths[0], "client"),
        server=_seen(server, veths[1], "server"),
        streams=tuple(
            StreamReady(
                s.node,
                s.interface,
                str(proven[s].state) if s in proven else "unknown",
                proven[s].reason if s in proven else "",
                len(collector.packets.get(s, ())),
            )
            for s in specs
        ),
        stitched=stitched,
        evidence=tuple(diff_evidence(b, a) for b, a in zip(before, after, strict=True)),
        received=received,
        problems=tuple(problems),
    )


def _seen(pod: PodState, veth_present: bool, role: str) -> PodSeen:
    return PodSeen(pod.namespace, pod.name, pod.node, pod.ip, pod.netns, pod.host_veth, veth_present, role)


__all__ = ["JourneyError", "NodeEvidence", "hop_roles", "hop_specs", "run_journey"]
