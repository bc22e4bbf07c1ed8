"""run_journey sends no traffic until every hop's capture is proven, and closes every capture it opened."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest

from labyrinth_tui.journey.plan import JourneyPlan, plan_hops, resolve_ends
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.model.progress import StepState
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.sources.base import (
    Emit,
    JourneyError,
    ProgressEvent,
    StreamSpec,
    StreamState,
    StreamStatus,
)
from labyrinth_tui.sources.journey_run import follow, hop_specs
from tests.unit.journey_topology import topology, vxlan_routes


def _plan() -> JourneyPlan:
    return plan_hops(resolve_ends(topology(), JourneyRequest()), vxlan_routes())


async def _no_traffic() -> tuple[str, int]:
    raise AssertionError("traffic sent before every capture was proven")


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

    async def close(self, spec: StreamSpec, emit: Emit, *, keep_for: float = 0.0) -> None:
        self.closed.append(spec)
        self._closing[spec].set()

    def is_watched(self, spec: StreamSpec) -> bool:
        return spec in self.open_now

    async def delivered(self, specs: Sequence[StreamSpec]) -> list[bool]:
        return [spec in self.open_now for spec in specs]  # their packets (none) are all out


def test_the_hops_are_captured_with_the_plan_s_filter() -> None:
    specs = hop_specs(_plan())
    assert len(specs) == 6
    assert {s.capture_filter for s in specs} == {"udp port 53 or tcp port 9999 or udp port 8472"}


async def test_an_unproven_capture_stops_the_run_before_any_traffic() -> None:
    caps = FakeCaptures(broken="cilium_vxlan")
    sessions = cast(dict[str, NodeSession], {})  # never reached: the run stops before evidence or traffic
    with pytest.raises(JourneyError) as failed:
        await follow(
            _plan(), topology(), _no_traffic, sessions, captures=caps, payload="x\n", ready_timeout=2.0
        )
    message = str(failed.value)
    assert message.startswith("captures not proven before the traffic: ")
    assert (
        "node-1/cilium_vxlan [udp port 53 or tcp port 9999 or udp port 8472]: There is no device named"
        in message
    )
    assert "node-1/ens4" not in message
    assert set(caps.closed) == set(hop_specs(_plan())) and not caps.open_now


async def test_events_are_forwarded_to_the_caller() -> None:
    seen: list[Any] = []
    caps = FakeCaptures(broken="ens4")
    with pytest.raises(JourneyError):
        await follow(
            _plan(),
            topology(),
            _no_traffic,
            {},
            captures=caps,
            emit=seen.append,
            payload="x\n",
            ready_timeout=2.0,
        )
    failed = [e.spec.key for e in seen if isinstance(e, StreamStatus) and e.state is StreamState.FAILED]
    assert len(failed) == 2 and all(k.startswith(("node-1/ens4", "node-2/ens4")) for k in failed)


class RecordingNode:
    """A node that answers every command with nothing (no iptables, no bpftool) and records the argv."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.argvs: list[tuple[str, ...]] = []

    @property
    def address(self) -> str:
        return self.name

    async def run(self, argv: Any, **kwargs: Any) -> Any:
        from labyrinth_tui.nodes.runner import CommandResult

        self.argvs.append(tuple(argv))
        return CommandResult(tuple(argv), 1, "", "sudo: a password is required")


async def test_evidence_on_a_non_root_login_is_read_with_the_same_sudo_as_captures() -> None:
    nodes = {name: RecordingNode(name) for name in ("node-1", "node-2")}

    async def traffic() -> tuple[str, int]:
        return "x\n", 0

    report = await follow(
        _plan(),
        topology(),
        traffic,
        cast(dict[str, NodeSession], nodes),
        captures=FakeCaptures(broken="none"),
        payload="x\n",
        ready_timeout=2.0,
        privilege=lambda node: ("sudo", "-n"),
    )
    # one batch per node before and one after (iptables-save, bpftool net|link|prog, the veths in it)
    assert [a for n in nodes.values() for a in n.argvs] == [("sudo", "-n", "sh", "-s")] * 4
    assert any(
        "iptables-save failed (1): sudo: a password is required" in p
        for e in report.evidence
        for p in e.problems
    )


async def test_a_node_ssh_cannot_reach_leaves_its_hops_out_and_the_run_goes_on() -> None:
    from labyrinth_tui.journey.plan import plan_hops, resolve_ends
    from labyrinth_tui.nodes.errors import NodeUnreachable

    class Gone(RecordingNode):
        async def run(self, argv: Any, **kwargs: Any) -> Any:
            raise NodeUnreachable(self.name, "cannot connect to 10.168.0.5:22: Connection refused")

    topo = topology(unreachable="node-2")
    plan = plan_hops(resolve_ends(topo, JourneyRequest()), vxlan_routes())
    nodes = {"node-1": RecordingNode("node-1"), "node-2": Gone("node-2")}

    async def traffic() -> tuple[str, int]:
        return "x\n", 0

    report = await follow(
        plan,
        topo,
        traffic,
        cast(dict[str, NodeSession], nodes),
        captures=FakeCaptures(broken="none"),
        payload="x\n",
        ready_timeout=2.0,
    )
    assert {s.node for s in report.streams} == {"node-1"}
    assert [e.node for e in report.evidence] == ["node-1"]
    assert any(p.startswith("node-2: not discovered (connection refused)") for p in report.problems)


class SlowCaptures(FakeCaptures):
    """Each stream steps forward `steps` times, `gap` s apart, then captures — or stays put if `stuck`."""

    def __init__(self, steps: int, gap: float, stuck: str = "") -> None:
        super().__init__(broken="none")
        self.steps, self.gap, self.stuck = steps, gap, stuck

    async def open(self, spec: StreamSpec, emit: Emit) -> None:
        self.open_now.add(spec)
        self._closing[spec] = asyncio.Event()
        emit(StreamStatus(spec, StreamState.STARTING, "checking the capture filter"))
        if spec.interface != self.stuck:
            for i in range(self.steps):
                await asyncio.sleep(self.gap)  # why: a capture on a loaded node, one slow step after another
                emit(StreamStatus(spec, StreamState.STARTING, f"canary round {i + 1}"))
            emit(StreamStatus(spec, StreamState.CAPTURING))
        await self._closing[spec].wait()
        self.open_now.discard(spec)


async def test_readiness_waits_while_captures_make_progress_and_shows_each_one() -> None:
    seen: list[Any] = []

    async def traffic() -> tuple[str, int]:
        return "x\n", 0

    nodes = {name: RecordingNode(name) for name in ("node-1", "node-2")}
    report = await follow(
        _plan(),
        topology(),
        traffic,
        cast(dict[str, NodeSession], nodes),
        captures=SlowCaptures(steps=5, gap=0.1),  # 0.5 s in all, never 0.3 s without a step
        emit=seen.append,
        payload="x\n",
        ready_timeout=5.0,
        stall=0.3,
    )
    assert all(s.state == "capturing" for s in report.streams)
    steps = [e.step for e in seen if isinstance(e, ProgressEvent)]
    done = {s.name for s in steps if s.state is StepState.DONE}
    assert done == {f"capture {s.node}/{s.interface}" for s in hop_specs(_plan())}
    assert any(s.log == "canary round 3" and s.state is StepState.RUNNING for s in steps)


async def test_a_capture_that_stops_moving_is_named_with_its_last_step() -> None:
    with pytest.raises(JourneyError) as failed:
        await follow(
            _plan(),
            topology(),
            _no_traffic,
            {},
            captures=SlowCaptures(steps=1, gap=0.05, stuck="cilium_vxlan"),
            payload="x\n",
            ready_timeout=5.0,
            stall=0.3,
        )
    message = str(failed.value)
    assert message.startswith("captures not proven before the traffic: node-1/cilium_vxlan")
    assert "still 'checking the capture filter' (no step forward for 0.3 s, or 5 s in all)" in message
    assert "node-1/ens4" not in message


class RecordingOnlyCaptures(FakeCaptures):
    """Every stream is recorded on its node but its tshark is still starting; `slow` never catches up."""

    def __init__(self, slow: str) -> None:
        super().__init__(broken="none")
        self.slow = slow
        self.asked: list[StreamSpec] = []

    async def open(self, spec: StreamSpec, emit: Emit) -> None:
        self.open_now.add(spec)
        self._closing[spec] = asyncio.Event()
        emit(StreamStatus(spec, StreamState.STARTING, "checking the capture filter"))
        emit(StreamStatus(spec, StreamState.STARTING, "recording; tshark starting", recorded=True))
        await self._closing[spec].wait()
        self.open_now.discard(spec)

    async def delivered(self, specs: Sequence[StreamSpec]) -> list[bool]:
        self.asked += specs
        return [spec.interface != self.slow for spec in specs]


async def test_traffic_goes_once_every_hop_records_and_a_hop_that_never_delivers_says_so() -> None:
    sent: list[bool] = []

    async def traffic() -> tuple[str, int]:
        sent.append(True)
        return "x\n", 0

    caps = RecordingOnlyCaptures(slow="cilium_vxlan")
    nodes = {name: RecordingNode(name) for name in ("node-1", "node-2")}
    report = await follow(
        _plan(), topology(), traffic, cast(dict[str, NodeSession], nodes), captures=caps, payload="x\n"
    )
    assert sent == [True] and caps.asked == list(hop_specs(_plan()))
    # a recording stream captures all the traffic: shown as capturing, as a tshark-proven one
    assert [(s.state, s.reason) for s in report.streams] == [("capturing", "")] * 6
    late = [p for p in report.problems if "not everything it recorded was shown" in p]
    assert [p.split(" [")[0] for p in late] == ["node-1/cilium_vxlan", "node-2/cilium_vxlan"]
