"""run_journey sends no traffic until every hop's capture is proven, and closes every capture it opened."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from labyrinth_tui.lab.state import LabState, NodeState, PodState, SshInfo
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.sources.base import Emit, JourneyError, StreamSpec, StreamState, StreamStatus
from labyrinth_tui.sources.journey_run import hop_specs, run_journey


def _state() -> LabState:
    ssh = SshInfo(22, "ssh-ed25519 AAAA", "root", "/nonexistent")
    nodes = [
        NodeState("node-1", "x.node-1", "10.168.0.4", "worker", "10.0.1.0/24", "10.0.1.49", ssh),
        NodeState("node-2", "x.node-2", "10.168.0.5", "worker", "10.0.2.0/24", "10.0.2.244", ssh),
    ]
    pods = [
        PodState("wrk-1", "node-wrk-1-ubuntu24-6-a", "node-1", "x.p1", "10.0.1.15", "lxc1ba60d50596c", ""),
        PodState("wrk-2", "node-wrk-2-ubuntu24-8-b", "node-2", "x.p2", "10.0.2.215", "lxc91a2bea4a8f8", ""),
    ]
    return LabState("x", "/run/labyrinth/x", "iptables", 0, 0.1, nodes, pods, [])


class FakeCaptures:
    """Proves every stream but `broken`, which fails with tshark's words; open() runs until close()."""

    def __init__(self, broken: str) -> None:
        self.broken = broken
        self.open_now: set[StreamSpec] = set()
        self.closed: list[StreamSpec] = []
        self._closing: dict[StreamSpec, asyncio.Event] = {}

    async def open(self, spec: StreamSpec, emit: Emit) -> None:
        self.open_now.add(spec)
        self._closing[spec] = asyncio.Event()
        emit(StreamStatus(spec, StreamState.STARTING))
        if spec.interface == self.broken:
            emit(StreamStatus(spec, StreamState.FAILED, 'There is no device named "cilium_vxlan"'))
        else:
            emit(StreamStatus(spec, StreamState.CAPTURING))
        await self._closing[spec].wait()
        self.open_now.discard(spec)

    async def close(self, spec: StreamSpec) -> None:
        self.closed.append(spec)
        self._closing[spec].set()


def test_the_six_hops_are_the_articles() -> None:
    assert [(s.node, s.interface) for s in hop_specs(_state())] == [
        ("node-1", "lxc1ba60d50596c"),
        ("node-1", "cilium_vxlan"),
        ("node-1", "ens4"),
        ("node-2", "ens4"),
        ("node-2", "cilium_vxlan"),
        ("node-2", "lxc91a2bea4a8f8"),
    ]


async def test_an_unproven_capture_stops_the_run_before_any_traffic() -> None:
    caps = FakeCaptures(broken="cilium_vxlan")
    sessions = cast(dict[str, NodeSession], {})  # never reached: the run stops before evidence or traffic
    with pytest.raises(JourneyError) as failed:
        await run_journey(_state(), captures=caps, sessions=sessions, ready_timeout=2.0)
    message = str(failed.value)
    assert message.startswith("captures not proven before the traffic: ")
    assert (
        "node-1/cilium_vxlan [udp port 53 or tcp port 9999 or udp port 8472]: There is no device named"
        in message
    )
    assert "node-1/ens4" not in message
    assert set(caps.closed) == set(hop_specs(_state())) and not caps.open_now


async def test_events_are_forwarded_to_the_caller() -> None:
    seen: list[Any] = []
    caps = FakeCaptures(broken="ens4")
    with pytest.raises(JourneyError):
        await run_journey(_state(), captures=caps, sessions={}, emit=seen.append, ready_timeout=2.0)
    failed = [e.spec.key for e in seen if isinstance(e, StreamStatus) and e.state is StreamState.FAILED]
    assert len(failed) == 2 and all(k.startswith(("node-1/ens4", "node-2/ens4")) for k in failed)
