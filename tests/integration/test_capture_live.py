"""Live tshark in namespaces of our own: the filter check in tshark's words, canary readiness, recordings."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.commands import in_netns
from labyrinth_tui.probes.capture import (
    CaptureFilterInvalid,
    CaptureInterfaceMissing,
    FilterCheck,
    Recording,
    capture_argv,
    filter_check_argv,
    interpret_filter_check,
    merge_recording_argv,
)
from labyrinth_tui.probes.capture_parse import SummaryParser
from labyrinth_tui.probes.capture_ready import Canary, CanaryWatch, canary_filter, interpret_canary_send
from labyrinth_tui.probes.dissect import dissect
from tests.conftest import needs_root
from tests.integration.conftest import unique_prefix

pytestmark = [
    needs_root,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make setup)"),
]
CLIENT, SERVER = "10.0.1.15", "10.0.1.16"
IFACE = "cap0"  # the client's end of the veth; its peer "cap1" lives in the server's netns
WAIT = 20.0  # seconds for any one condition; a test that waits this long has failed


@dataclass(frozen=True)
class Pair:
    client: str  # netns names
    server: str


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """Two namespaces joined by a veth; nothing in the root namespace; removed even when a test fails."""
    prefix = unique_prefix("cap")
    pair = Pair(f"{prefix}-cli", f"{prefix}-srv")
    try:
        ip("netns", "add", pair.client)
        ip("netns", "add", pair.server)
        veth = ["link", "add", IFACE, "type", "veth", "peer", "name", "cap1", "netns", pair.server]
        ip("-n", pair.client, *veth)
        ip("-n", pair.client, "addr", "add", f"{CLIENT}/24", "dev", IFACE)
        ip("-n", pair.server, "addr", "add", f"{SERVER}/24", "dev", "cap1")
        ip("-n", pair.client, "link", "set", IFACE, "up")
        ip("-n", pair.server, "link", "set", "cap1", "up")
        yield pair
    finally:
        for ns in (pair.client, pair.server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def check_filter(netns: str, interface: str, capture_filter: str) -> FilterCheck:
    done = subprocess.run(
        in_netns(netns, filter_check_argv(interface, capture_filter)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return interpret_filter_check(interface, capture_filter, done.returncode, done.stdout, done.stderr)


def test_a_bad_filter_is_refused_before_any_stream_in_tsharks_own_words(pair: Pair) -> None:
    with pytest.raises(CaptureFilterInvalid) as refused:
        check_filter(pair.client, IFACE, "tcp port eighty")
    reason = refused.value.reason
    assert "unknown port 'eighty'" in reason and '"tcp port eighty"' in reason
    # what tshark itself says when started with that filter: the same sentence
    tshark = subprocess.run(
        in_netns(pair.client, ["tshark", "-i", IFACE, "-f", "tcp port eighty", "-c", "1"]),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert tshark.returncode != 0
    assert "That string isn't a valid capture filter (unknown port 'eighty')." in tshark.stderr
    assert "That string isn't a valid capture filter (unknown port 'eighty')." in reason


def test_a_missing_interface_is_named(pair: Pair) -> None:
    with pytest.raises(CaptureInterfaceMissing, match='no device named "nosuch0"'):
        check_filter(pair.client, "nosuch0", "tcp")


def test_good_filters_compile_with_and_without_the_canary(pair: Pair) -> None:
    assert check_filter(pair.client, IFACE, "udp port 9").instructions > 2
    assert check_filter(pair.client, IFACE, canary_filter("udp port 9")).instructions > 2
    assert check_filter(pair.client, IFACE, "").instructions >= 1


@dataclass
class Stream:
    """A local stand-in for the node session's side: tshark's stdout lines → parser → canary watch."""

    proc: asyncio.subprocess.Process
    parser: SummaryParser
    watch: CanaryWatch
    lines: int = 0
    packets: list[PacketSummary] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines += 1
            parsed = self.parser.parse(line.decode("utf-8", "replace").rstrip("\n"))
            if parsed is not None:
                self.packets += self.watch.take([parsed])
            self.changed.set()

    async def until(self, condition: object) -> None:
        async def wait() -> None:
            while not condition():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), WAIT)


async def run_in(netns: str, argv: list[str]) -> tuple[int | None, str]:
    proc = await asyncio.create_subprocess_exec(
        *in_netns(netns, argv), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    return proc.returncode, err.decode()


@contextlib.asynccontextmanager
async def started(argv: list[str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """A process we start and, whatever happens, end by its own PID."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


DATAGRAMS = 50
SEND_UDP = f"""import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range({DATAGRAMS}):
    s.sendto(bytes(200), ("{SERVER}", 9))
"""
CONNECT = f"import socket\ns = socket.socket()\ntry: s.connect(('{SERVER}', 9))\nexcept OSError: pass"


async def test_live_stream_is_ready_by_canary_and_its_recording_opens(pair: Pair, tmp_path: Path) -> None:
    canary, stranger = Canary.new(), Canary.new()
    recording = Recording(str(tmp_path / "cap0.pcapng"), files=1000, file_kb=1)  # tiny files: it must rotate
    argv = capture_argv(
        IFACE, canary_filter("udp port 9 or tcp port 9"), recording=recording, engine="tshark"
    )
    async with started(in_netns(pair.client, argv)) as tshark:
        stream = Stream(tshark, SummaryParser("node-1", IFACE), CanaryWatch(canary))
        reader = asyncio.create_task(stream.read())
        # "Capturing on" proves nothing; canaries until one comes back does
        async with started(in_netns(pair.client, canary.send_argv(IFACE, count=200, interval=0.05))):
            await stream.until(lambda: stream.watch.ready)
        status, err = await run_in(pair.client, stranger.send_argv(IFACE, count=1))
        interpret_canary_send(IFACE, status, err)
        assert await run_in(pair.client, ["python3", "-c", SEND_UDP]) == (0, "")
        assert (await run_in(pair.client, ["python3", "-c", CONNECT]))[0] == 0
        await stream.until(lambda: sum(p.tcp_flags == "RST,ACK" for p in stream.packets) >= 1)
        await stream.until(
            lambda: sum(p.dport == 9 and p.tcp_flags is None for p in stream.packets) >= DATAGRAMS
        )
        await stream.until(lambda: stream.watch.removed >= 2)  # ours, the stranger's
        tshark.terminate()
        await asyncio.wait_for(reader, WAIT)

    packets = stream.packets
    assert stream.parser.skipped_total == 0, stream.parser.last_skipped
    assert all(p.protocol != "0x88b5" for p in packets)  # no canary reaches the ring
    udp = [p for p in packets if p.dport == 9 and p.tcp_flags is None]
    assert len(udp) == DATAGRAMS and {(p.src, p.dst, p.protocol) for p in udp} == {(CLIENT, SERVER, "UDP")}
    assert len({p.ip_id for p in udp}) == DATAGRAMS  # each its own IP id: a journey can tell them apart
    syn = next(p for p in packets if p.tcp_flags == "SYN")
    rst = next(p for p in packets if p.tcp_flags == "RST,ACK")
    assert syn.seq is not None and rst.ack == (syn.seq + 1) % 2**32 and (rst.src, rst.sport) == (SERVER, 9)

    # the recording: tshark's own ring of files, joined, opens in tshark with every packet the stream saw
    parts = sorted(str(p) for p in tmp_path.glob("cap0_*.pcapng"))
    assert len(parts) > 1, "the recording should have rotated"
    merged = tmp_path / "stream.pcapng"
    subprocess.run(merge_recording_argv(parts, str(merged)), check=True, capture_output=True)
    opened = subprocess.run(["tshark", "-r", str(merged)], capture_output=True, text=True, check=True)
    assert len(opened.stdout.splitlines()) == stream.lines  # canaries included: they are on the wire
    # tshark restarts its numbering in every ring file; the stream's numbers go on, file after file
    assert len(stream.parser.file_starts) == len(parts)
    assert [p.number for p in packets] == sorted({p.number for p in packets})
    # a stream's packet number is its frame number in the recording: the detail view can dissect it
    detail = await dissect(merged, syn.number)
    assert detail.layer_names == ("frame", "eth", "ip", "tcp")
    src, flags = detail.find("ip.src"), detail.find("tcp.flags")
    assert src is not None and src.show == CLIENT
    assert flags is not None and flags.showname == "Flags: 0x002 (SYN)"
