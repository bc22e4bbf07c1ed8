"""The kernel's own drops on a real lab stream: a 1 KiB capture buffer, a burst from one pod to another."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labyrinth_tui.lab.netns import pids_in
from labyrinth_tui.lab.state import LabState, load_state
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.connect import NetnsConnector
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.sources.base import (
    PacketBatch,
    SourceEvent,
    StreamDrops,
    StreamSpec,
    StreamState,
    StreamStatus,
)
from labyrinth_tui.sources.captures import CaptureStreams

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make setup)")

SENT = 20_000  # a burst no 1 KiB buffer holds: measured here, tcpdump -B 1 dropped ~14k of 20k
WAIT = 30.0
BURST = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(b"labyrinth", ("10.0.2.215", 9))
print(int(sys.argv[1]))
"""


@dataclass
class Seen:
    """What the app gets from the stream: statuses, packets, and the kernel-drop counts it reported."""

    statuses: list[StreamStatus] = field(default_factory=list)
    packets: list[PacketSummary] = field(default_factory=list)
    drops: list[int] = field(default_factory=list)

    def emit(self, event: SourceEvent) -> None:
        if isinstance(event, StreamStatus):
            self.statuses.append(event)
        elif isinstance(event, PacketBatch):
            self.packets.extend(event.packets)
        elif isinstance(event, StreamDrops):
            self.drops.append(event.packets)

    @property
    def dropped(self) -> int:
        return self.drops[-1] if self.drops else 0

    def datagrams(self) -> int:
        return sum(p.dport == 9 for p in self.packets)


async def until(condition: Callable[[], object], what: Callable[[], object], timeout: float = WAIT) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)  # why: polling what the stream emitted, on the loop it runs on
    except TimeoutError:
        raise AssertionError(f"after {timeout:g} s, still waiting for {what()}") from None


def canary_senders(netns: str) -> int:
    """The stream's readiness-canary senders still running in the node's netns (python3 -c its script)."""
    found = 0
    for pid in pids_in([netns]).get(netns, []):
        try:
            found += b"canary not sent on" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # ended meanwhile
    return found


def no_canary_for(netns: str, seconds: float = 0.5) -> Callable[[], bool]:
    """A condition: no canary sender in `netns` for `seconds` on end (a round begun just before the
    stream turned ready may still be starting over SSH when the one before it has ended)."""
    since: list[float] = []

    def check() -> bool:
        if canary_senders(netns):
            since.clear()
            return False
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= seconds

    return check


def recorded_datagrams(path: Path) -> int:
    """The burst's datagrams in the stream's recording, as tshark counts them there."""
    read = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "udp.dstport == 9", "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    )
    return len(read.stdout.split())


async def test_the_kernels_drops_are_reported_and_recorded_plus_dropped_is_what_was_sent(
    lab_prefix: str, tmp_path: Path
) -> None:
    """With a 1 KiB capture buffer a burst of 20,000 datagrams from the wrk-1 pod overflows the kernel's
    ring for tcpdump's socket. The stream reports the kernel's count (tcpdump's own, "N packets
    dropped by kernel"), and exactly: datagrams recorded + dropped = datagrams sent.

    Exact because the kernel counts every packet that passes the capture filter either into the ring
    or as a drop (PACKET_STATISTICS: "received by filter" = captured + dropped), and every datagram the
    pod sends passes its veth's tap; the readiness canaries, which also pass the filter, have all been
    sent before the burst starts (no canary sender on the node for 0.5 s), so none is among the drops.
    That the pane shows each count: tests/unit/test_ui_kernel_drops.py."""
    state: LabState | None = load_state(lab_prefix)
    assert state is not None
    pod = next(p for p in state.pods if p.name.startswith("node-wrk-1"))
    node = next(n for n in state.nodes if n.name == pod.node)
    session = NodeSession(
        node.name,
        NetnsConnector(
            node.netns, node.address, node.ssh.port, node.ssh.user, node.ssh.client_key, node.ssh.host_key
        ),
    )
    captures = CaptureStreams({node.name: session}, buffer_kb=1, tag=lab_prefix)
    spec = StreamSpec(node.name, pod.host_veth, "udp port 9", journey_fields=True)
    seen = Seen()
    try:
        task = asyncio.create_task(captures.open(spec, seen.emit, record_dir=tmp_path))
        await until(
            lambda: seen.statuses and seen.statuses[-1].state is StreamState.CAPTURING, lambda: seen.statuses
        )
        await until(no_canary_for(node.netns), lambda: "the last readiness canary sent")
        burst = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            pod.netns,
            "python3",
            "-c",
            BURST,
            str(SENT),
            stdout=asyncio.subprocess.PIPE,
        )
        said, _ = await asyncio.wait_for(burst.communicate(), WAIT)
        assert burst.returncode == 0 and int(said) == SENT
        # the relay asks tcpdump for its drops every second: wait until shown + dropped covers the burst
        await until(
            lambda: seen.datagrams() + seen.dropped >= SENT,
            lambda: f"{SENT:,} shown or dropped; shown {seen.datagrams():,}, kernel dropped {seen.dropped:,}",
        )
        await captures.close(spec)
        await asyncio.wait_for(task, WAIT)
    finally:
        await captures.close_all()
        await session.close()
    assert seen.statuses[-1].state is StreamState.STOPPED
    dropped = seen.dropped
    assert dropped > 0, "a 1 KiB buffer held the whole burst: the kernel dropped nothing"
    assert seen.drops == sorted(seen.drops), "tcpdump's count only grows"
    recording = captures.pcapng_path(spec)
    assert recording is not None
    recorded = recorded_datagrams(recording)
    assert recorded == seen.datagrams(), "every packet tcpdump got is recorded and shown"
    assert recorded + dropped == SENT, f"recorded {recorded:,} + kernel dropped {dropped:,} ≠ sent {SENT:,}"
