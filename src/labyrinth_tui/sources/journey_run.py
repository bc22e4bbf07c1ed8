"""A journey run: hops planned from the topology, every hop captured and proven first, the traffic, stitched.

`follow` is the run on any source (its traffic given); `run_journey` is the lab's (ncat via ip netns exec).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from labyrinth_tui.journey.plan import End, JourneyPlan, plan_hops, resolve_ends, route_queries
from labyrinth_tui.journey.report import JourneyReport, PodSeen, StreamReady
from labyrinth_tui.journey.request import JourneyRequest, RequestError
from labyrinth_tui.journey.stitch import stitch
from labyrinth_tui.lab.state import LabState
from labyrinth_tui.lab.traffic import TrafficError, exchange
from labyrinth_tui.model.evidence import NodeEvidence, diff_evidence
from labyrinth_tui.model.topology import Topology
from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.evidence import DatapathReader, NodeReading, read_node
from labyrinth_tui.probes.route_get import routes_for
from labyrinth_tui.sources.base import JourneyError, SourceEvent, StreamSpec, StreamState, StreamStatus
from labyrinth_tui.sources.captures import CaptureStreams
from labyrinth_tui.sources.journey_captures import (
    Captures,
    Collector,
    hop_specs,
    proven,
    until_ready,
    why_not_ready,
)
from labyrinth_tui.sources.lab_nodes import datapath_reader, discover_lab, sessions_for


class Phases:
    """Where a journey's time went: each phase's seconds, in order (bench/journey_latency.py prints them)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, phase: str) -> None:
        """`phase` ended now: it took the time since the previous mark."""
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now


# s the hops' captures stay open after a journey: the next `j` on the same hops finds them proven (six
# tshark starts were 3.3 s of a 6.2 s journey at load 2.7 on 2 cores); then they stop unread
KEEP_WARM: Final = 60.0
READY_LIMIT: Final = 60.0  # s: the hard limit on proving the hops' captures (--ready-timeout)
STALL: Final = 15.0  # s a capture may go without a step forward before it is given up on


Traffic = Callable[[], Awaitable[tuple[str | None, int]]]
"""Runs the exchange; returns what the server read and which of the plan's servers read it (-1: none).
None for what was read: the target's own application answered (no server of ours to ask)."""


async def plan_journey(
    topology: Topology, request: JourneyRequest, sessions: Mapping[str, NodeSession]
) -> JourneyPlan:
    """The request's ends in the topology, each involved node's routes asked, the hops derived."""
    try:
        ends = resolve_ends(topology, request)
    except RequestError as exc:
        raise JourneyError(str(exc)) from None
    return plan_hops(ends, await routes_for(sessions, route_queries(ends)))


async def run_journey(
    state: LabState,
    request: JourneyRequest | None = None,
    *,
    captures: Captures | None = None,
    sessions: Mapping[str, NodeSession] | None = None,
    topology: Topology | None = None,
    emit: Callable[[SourceEvent], None] | None = None,
    ready_timeout: float = READY_LIMIT,
    phases: Phases | None = None,
    linger: set[asyncio.Future[Any]] | None = None,
    keep_warm: float = 0.0,
) -> JourneyReport:
    """The lab's journey: the request's (the article's by default) hops planned from what discovery sees."""
    request = request or JourneyRequest()
    phases = phases or Phases()
    own_sessions = sessions is None
    nodes = dict(sessions) if sessions is not None else dict(sessions_for(state))
    try:
        if topology is None:
            topology = await discover_lab(state, nodes)
        phases.mark("discovery")
        plan = await plan_journey(topology, request, nodes)
        phases.mark("plan (ip route get)")
        netns = {p.ip: p.netns for p in state.pods}  # the lab's own names for the pods' netns

        async def traffic() -> tuple[str, int]:
            ends = plan.ends
            try:
                return await exchange(
                    client_netns=netns[ends.client.pod.ip], client_name=ends.client.pod.name,
                    servers=[(netns[s.pod.ip], s.pod.name) for s in ends.servers],
                    target=ends.target_host, port=ends.target_port if ends.service is None else ends.port,
                    payload=request.payload, timeout=10.0, proto=ends.proto,
                )  # fmt: skip
            except TrafficError as exc:
                raise JourneyError(str(exc)) from None

        if captures is None:  # capture folders named after the lab: `lab down` sweeps its own only
            captures = CaptureStreams(nodes, tag=state.prefix)
        return await follow(
            plan, topology, traffic, nodes, captures=captures, emit=emit,
            payload=request.payload, ready_timeout=ready_timeout,
            datapath=lambda node: datapath_reader(state, node), phases=phases, linger=linger,
            keep_warm=keep_warm,
        )  # fmt: skip
    finally:
        if own_sessions:
            await asyncio.gather(*(s.close() for s in nodes.values()), return_exceptions=True)


async def follow(
    plan: JourneyPlan,
    topology: Topology,
    traffic: Traffic,
    nodes: Mapping[str, NodeSession],
    *,
    captures: Captures | None = None,
    emit: Callable[[SourceEvent], None] | None = None,
    payload: str,
    ready_timeout: float = READY_LIMIT,
    stall: float = STALL,
    privilege: Callable[[str], Sequence[str]] | None = None,
    datapath: Callable[[str], DatapathReader | None] | None = None,
    phases: Phases | None = None,
    linger: set[asyncio.Future[Any]] | None = None,
    keep_warm: float = 0.0,
) -> JourneyReport:
    """Captures proven on every planned hop, evidence before, the traffic, evidence after, stitched.

    A hop is proven once its node records every packet (its relay has its canary in the file; tshark
    may still be starting): the counters before are read meanwhile, one round trip per node. After
    the traffic, each stream must show all it recorded (`Captures.delivered`) while the counters
    after are read; a stream that does not in time is named in the report's problems.
    `privilege(node)` prefixes the evidence commands there (("sudo", "-n") for a non-root login);
    `datapath(node)` reads a node's BPF programs where the source can (the lab's own reader).
    With `linger` the hops' captures are closed behind the report (their ending goes into the set, which
    the caller awaits before closing the captures' sessions): stopping six tsharks and removing their
    files took 1.8 s of `j` at load 7, and the report needs none of it. `keep_warm` s: how long they
    stay open unread for the next journey (the caller's close of its captures ends them sooner)."""
    phases = phases or Phases()
    prefix = privilege or (lambda node: ())
    read_datapath = datapath or (lambda node: None)
    caps = captures if captures is not None else CaptureStreams(nodes)
    ends = plan.ends
    specs = hop_specs(plan)
    collector = Collector(emit)
    problems: list[str] = list(plan.notes)
    at_start: dict[StreamSpec, StreamStatus] = {}
    involved = list(dict.fromkeys([ends.client.node.name, *(s.node.name for s in ends.servers)]))
    # a node SSH could not reach has no hops in the plan (it says so) and gives no evidence
    involved = [n for n in involved if n in nodes and getattr(topology.node(n), "reachable", True)]

    async def evidence(veths: Mapping[str, Sequence[str]]) -> list[NodeReading]:
        # one round trip per node, the nodes at once (probes/evidence.read_node)
        return await asyncio.gather(
            *(
                read_node(nodes[n], privilege=prefix(n), datapath=read_datapath(n), veths=veths.get(n, ()))
                for n in involved
            )
        )

    # each open() runs until its close(): one task per hop, all started before any traffic
    collector.joined = {spec for spec in specs if caps.is_watched(spec)}
    opened = [asyncio.create_task(caps.open(spec, collector), name=f"journey {spec.key}") for spec in specs]
    # the counters before need no capture: they are read while the captures are being proven
    early = asyncio.ensure_future(evidence({}))
    answered = ends.servers[0]
    try:

        def settled() -> bool:
            return all(
                (s := collector.states.get(spec)) is not None
                and (s.state is not StreamState.STARTING or s.recorded)
                for spec in specs
            )

        await until_ready(collector, specs, settled, ready_timeout, stall)
        not_ready = [
            f"{spec.key}: {why_not_ready(collector.states.get(spec), ready_timeout, stall)}"
            for spec in specs
            if not proven(collector.states.get(spec))
        ]
        if not_ready:
            raise JourneyError("captures not proven before the traffic: " + "; ".join(not_ready))
        # what each stream was when the traffic started: a recording one captures all of it
        at_start = {
            spec: replace(st, state=StreamState.CAPTURING, reason="", recorded=False) if st.recorded else st
            for spec, st in collector.states.items()
        }
        phases.mark("captures proven")
        before = [r.evidence for r in await early]
        phases.mark("evidence before")
        read, which = await traffic()
        phases.mark("traffic")
        if which >= 0:
            answered = ends.servers[which]
        received = read or ""
        if read is None:
            problems.append(
                f"a backend already listens on {ends.target_port}: no server was started, "
                "and what the application read is not shown"
            )
        elif received != payload:
            where = "no server" if which < 0 else "the server"
            problems.append(f"{where} read {received!r}, not {payload!r}")
        # the counters after (and the two pods' host veths) are read while the streams settle
        veths: dict[str, list[str]] = {}
        for end in (ends.client, answered):
            if end.pod.host_veth:
                veths.setdefault(end.node.name, []).append(end.pod.host_veth)
        late = asyncio.ensure_future(evidence(veths))
        try:
            # the last ACK and the FINs are on the wire by now: each stream shows what its node
            # recorded, the streams whose tshark was still starting included (a canary behind it)
            shown = await caps.delivered(specs)
            problems += [
                f"{spec.key}: not everything it recorded was shown in time (tshark still starting?)"
                for spec, done in zip(specs, shown, strict=True)
                if not done
            ]
            phases.mark("settle")
        finally:
            after_read = await late
        after = [r.evidence for r in after_read]
        present = {veth: found for r in after_read for veth, found in r.veths.items()}
        phases.mark("evidence after")
    except NodeError as exc:
        raise JourneyError(f"{exc.node}: {exc.reason}") from None
    finally:
        if not early.done():  # the captures failed first: theirs is the error to show
            early.cancel()
        with contextlib.suppress(BaseException):
            await early
        closing = asyncio.ensure_future(_close(caps, specs, collector, opened, keep_warm))
        if linger is None:
            await closing
        else:
            linger.add(closing)
            closing.add_done_callback(linger.discard)
        phases.mark("captures closed")
    observations = [p for spec in specs for p in collector.packets.get(spec, ())]
    # a pod dialled by its IP is no service's backend here: the flow keeps the pod's address
    services = tuple(
        s for s in topology.services if ends.service is not None or ends.target_ip not in s.endpoints
    )
    stitched = stitch(
        observations,
        services,
        plan.roles(topology),
        captured=[(s.node, s.interface) for s in specs],
        reference_node=ends.client.node.name,
    )
    phases.mark("stitch")
    return JourneyReport(
        cluster=topology.cluster,
        service=ends.target_host,
        service_ip=ends.target_ip,
        service_port=ends.port,
        client=_seen(ends.client, _present(present, ends.client), "client"),
        server=_seen(answered, _present(present, answered), "server"),
        streams=tuple(
            StreamReady(
                s.node,
                s.interface,
                str(at_start[s].state) if s in at_start else "unknown",
                at_start[s].reason if s in at_start else "",
                len(collector.packets.get(s, ())),
            )
            for s in specs
        ),
        stitched=stitched,
        evidence=tuple(diff_evidence(b, a) for b, a in zip(before, after, strict=True)),
        received=received,
        problems=tuple(problems),
    )


async def _close(
    caps: Captures,
    specs: Sequence[StreamSpec],
    collector: Collector,
    opened: Sequence[asyncio.Task[None]],
    keep_for: float,
) -> None:
    await asyncio.gather(
        *(caps.close(spec, collector, keep_for=keep_for) for spec in specs), return_exceptions=True
    )
    await asyncio.gather(*opened, return_exceptions=True)


def _present(present: Mapping[str, bool], end: End) -> bool:
    return end.pod.host_veth is not None and present.get(end.pod.host_veth, False)


def _seen(end: End, veth_present: bool, role: str) -> PodSeen:
    pod = end.pod
    return PodSeen(
        pod.namespace, pod.name, end.node.name, pod.ip, pod.netns, pod.host_veth or "", veth_present, role
    )


__all__ = [
    "JourneyError", "NodeEvidence", "Phases", "Traffic", "follow", "hop_specs", "plan_journey", "run_journey",
]  # fmt: skip
