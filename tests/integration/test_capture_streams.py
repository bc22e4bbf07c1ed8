"""Live streams over SSH into the lab: what a user sees in them, many at once, and nothing left on a node."""
# (streams here ask for the journey's fields: ip.id identifies each packet in the recording)

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.lab.netns import pids_in
from labyrinth_tui.lab.state import LabState, load_state
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.connect import NetnsConnector
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.sources.base import PacketBatch, SourceEvent, StreamSpec, StreamState, StreamStatus
from labyrinth_tui.sources.captures import CaptureStreams
from labyrinth_tui.sources.journey_run import hop_specs, plan_journey, run_journey
from labyrinth_tui.sources.lab_nodes import discover_lab
from tests.fakes.waiting import listening, wait_until
from tests.integration.conftest import LABYRINTH

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make setup)")

WRK1, WRK2 = "node-wrk-1-ubuntu24", "node-wrk-2-ubuntu24"
CLUSTER_IP = "10.105.134.33"  # wrk-2's service, as the article has it
WAIT = 30.0  # seconds for any one condition; a test that waits this long has failed


@dataclass
class Seen:
    """What the app would get from the streams: statuses and batches, per stream."""

    statuses: dict[StreamSpec, list[StreamStatus]] = field(default_factory=dict)
    packets: dict[StreamSpec, list[PacketSummary]] = field(default_factory=dict)
    batches: int = 0

    def emit(self, event: SourceEvent) -> None:
        if isinstance(event, StreamStatus):
            self.statuses.setdefault(event.spec, []).append(event)
        elif isinstance(event, PacketBatch):
            self.batches += 1
            self.packets.setdefault(event.spec, []).extend(event.packets)

    def state(self, spec: StreamSpec) -> StreamState | None:
        statuses = self.statuses.get(spec)
        return statuses[-1].state if statuses else None

    def of(self, spec: StreamSpec) -> list[PacketSummary]:
        return self.packets.get(spec, [])


async def until(condition: Callable[[], bool], what: str | Callable[[], str], timeout: float = WAIT) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)  # why: polling what the streams emitted, on the loop they run on
    except TimeoutError:
        said = what if isinstance(what, str) else what()
        raise AssertionError(f"after {timeout:g} s, still waiting for {said}") from None


@pytest.fixture(scope="module")
def state(lab_prefix: str) -> LabState:
    loaded = load_state(lab_prefix)
    assert loaded is not None
    return loaded


def sessions_of(state: LabState) -> dict[str, NodeSession]:
    return {
        n.name: NodeSession(
            n.name,
            NetnsConnector(n.netns, n.address, n.ssh.port, n.ssh.user, n.ssh.client_key, n.ssh.host_key),
        )
        for n in state.nodes
    }


@pytest.fixture
async def captures(state: LabState) -> AsyncIterator[CaptureStreams]:
    sessions = sessions_of(state)
    streams = CaptureStreams(sessions)
    try:
        yield streams
    finally:
        await streams.close_all()
        await asyncio.gather(*(s.close() for s in sessions.values()))


def node_netns(state: LabState, node: str) -> str:
    return next(n.netns for n in state.nodes if n.name == node)


def pod_of(state: LabState, name_prefix: str) -> tuple[str, str, str]:
    """(node, host veth, pod netns) of the pod whose name starts with name_prefix."""
    pod = next(p for p in state.pods if p.name.startswith(name_prefix))
    return pod.node, pod.host_veth, pod.netns


def captures_running(state: LabState) -> dict[str, int]:
    """tshark, tcpdump, dumpcap and python3 (the relay, canary senders) per node netns, from /proc."""
    found = pids_in([n.netns for n in state.nodes])
    counts = {}
    for netns, pids in found.items():
        names = []
        for pid in pids:
            try:
                names.append(Path(f"/proc/{pid}/comm").read_text().strip())
            except OSError:
                continue  # ended meanwhile
        counts[netns] = sum(
            name in ("tshark", "tcpdump", "dumpcap") or name.startswith("python3") for name in names
        )
    return counts


async def no_capture_left(state: LabState, timeout: float = 15.0) -> None:
    await until(lambda: not any(captures_running(state).values()), "no tshark/tcpdump/dumpcap left", timeout)


def start(captures: CaptureStreams, spec: StreamSpec, seen: Seen, **kwargs: object) -> asyncio.Task[None]:
    return asyncio.create_task(captures.open(spec, seen.emit, **kwargs))  # type: ignore[arg-type]


async def send_udp(pod_netns: str, count: int, gap: float = 0.0005) -> None:
    """`count` datagrams from a pod, each with its own IP id (the kernel counts them)."""
    script = (
        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"for i in range({count}):\n s.sendto(b'labyrinth',('10.0.2.215',9))\n time.sleep({gap})"
    )
    proc = await asyncio.create_subprocess_exec("ip", "netns", "exec", pod_netns, "python3", "-c", script)
    assert await asyncio.wait_for(proc.wait(), WAIT) == 0


def frame_ip_ids(path: Path) -> dict[int, int]:
    """Frame number → IP id of every IP packet in a capture file, as tshark reads it."""
    read = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "ip.id"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {int(n): int(i, 16) for n, i in (ln.split("\t") for ln in read.stdout.splitlines()) if i}


async def until_count(seen: Seen, spec: StreamSpec, count: int, timeout: float = WAIT) -> None:
    """Until the stream has shown `count` packets."""
    await until(
        lambda: len(seen.of(spec)) >= count,
        lambda: f"{count} packets, have {len(seen.of(spec))}",
        timeout=timeout,
    )


async def test_a_stream_on_the_client_pods_veth_shows_the_articles_journey(
    lab_prefix: str, state: LabState, captures: CaptureStreams
) -> None:
    node, veth, _ = pod_of(state, WRK1)
    spec = StreamSpec(node, veth, journey_fields=True)
    seen = Seen()
    task = start(captures, spec, seen)
    await until(lambda: seen.state(spec) is StreamState.CAPTURING, "the stream is capturing")
    # "recording" comes between when the node's relay had the canary before tshark showed it
    assert [(s.state, s.recorded) for s in seen.statuses[spec]] in (
        [(StreamState.STARTING, False), (StreamState.STARTING, True), (StreamState.CAPTURING, False)],
        [(StreamState.STARTING, False), (StreamState.CAPTURING, False)],
    )
    server = subprocess.Popen(
        [*LABYRINTH, "lab", "exec", "--prefix", lab_prefix, WRK2, "--", "ncat", "-l", "0.0.0.0", "9999"],
        stdin=subprocess.PIPE,  # kept open: ncat -l would send FIN at EOF (docs/lab-facts.md)
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: listening(pod_of(state, WRK2)[2], 9999), WAIT, "ncat -l in the wrk-2 pod")
        client = await asyncio.create_subprocess_exec(
            *LABYRINTH, "lab", "exec", "--prefix", lab_prefix, WRK1, "--", "ncat", f"{WRK2}.wrk-2", "9999",
            stdin=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.wait_for(client.communicate(b"asdfasdfasdfasd\n"), WAIT)
        assert client.returncode == 0
    finally:
        server.kill()
        server.wait()

    def journey_seen() -> bool:
        packets = seen.of(spec)
        return any(p.tcp_flags == "FIN,ACK" and p.src == CLUSTER_IP for p in packets) or any(
            p.tcp_flags == "FIN,ACK" and p.dst == CLUSTER_IP for p in packets
        )

    await until(journey_seen, "the TCP exchange through the service reaches the stream")
    packets = seen.of(spec)
    # the pod's own view, before kube-proxy: DNS to kube-dns walking the search list, then the cluster IP
    queries = [p.dns_query for p in packets if p.dst == "10.96.0.10" and p.dport == 53]
    assert f"{WRK2}.wrk-2.wrk-1.svc.cluster.local" in queries
    syn = next(p for p in packets if p.tcp_flags == "SYN")
    assert (syn.src, syn.dst, syn.dport) == ("10.0.1.15", CLUSTER_IP, 9999)
    assert any(p.tcp_flags == "SYN,ACK" and p.src == CLUSTER_IP for p in packets)
    assert all(p.protocol != "0x88b5" for p in packets), "readiness canaries never reach the user"
    assert [p.number for p in packets] == sorted({p.number for p in packets})
    assert seen.batches < len(packets), "packets arrive in batches, not one event each"
    await captures.close(spec)
    await asyncio.wait_for(task, WAIT)
    assert seen.state(spec) is StreamState.STOPPED
    await no_capture_left(state)


async def test_once_delivered_a_stream_has_shown_all_it_recorded_even_while_its_tshark_started(
    state: LabState, captures: CaptureStreams
) -> None:
    node, veth, pod_netns = pod_of(state, WRK1)
    spec = StreamSpec(node, veth, "udp port 9", journey_fields=True)
    seen = Seen()
    task = start(captures, spec, seen)
    # the traffic goes as soon as the node records, as a journey's does: tshark may still be loading
    await until(
        lambda: any(s.recorded or s.state is StreamState.CAPTURING for s in seen.statuses.get(spec, [])),
        "the node records the stream",
    )
    await send_udp(pod_netns, 40)
    assert await captures.delivered([spec, StreamSpec(node, "ens4")]) == [True, False]  # ens4: not open
    # no waiting after it: every datagram has been emitted already
    assert len([p for p in seen.of(spec) if p.dport == 9]) == 40
    await captures.close(spec)
    await asyncio.wait_for(task, WAIT)
    await no_capture_left(state)


async def test_fifteen_streams_on_three_nodes_at_once_then_none_left(
    state: LabState, captures: CaptureStreams
) -> None:
    client_node, client_veth, client_netns = pod_of(state, WRK1)
    server_node, server_veth, _ = pod_of(state, WRK2)
    specs = [
        StreamSpec(client_node, i, journey_fields=True)
        for i in ("ens4", "cilium_host", "cilium_net", "cilium_vxlan", "lo")
    ]
    # nine on one node: more than sshd's MaxSessions (10) once each stream's canaries have a channel too
    specs += [
        StreamSpec(client_node, client_veth, f, journey_fields=True) for f in ("", "udp", "udp port 9", "ip")
    ]
    specs += [StreamSpec(server_node, i, journey_fields=True) for i in ("ens4", "cilium_vxlan", server_veth)]
    specs += [StreamSpec("node-0", i, journey_fields=True) for i in ("ens4", "cilium_host", "cilium_vxlan")]
    assert len(specs) == 15 and sum(s.node == client_node for s in specs) == 9
    seen = Seen()
    tasks = [start(captures, spec, seen) for spec in specs]
    await until(
        lambda: all(seen.state(s) is StreamState.CAPTURING for s in specs),
        f"all capturing: { {s.key: seen.state(s) for s in specs} }",
        timeout=60,
    )
    assert sum(captures_running(state).values()) >= 2 * len(specs)  # a tshark and a tcpdump each
    await send_udp(client_netns, 200)
    on_client = StreamSpec(client_node, client_veth, "udp port 9", journey_fields=True)
    on_server = StreamSpec(server_node, server_veth, journey_fields=True)
    on_wire = StreamSpec(client_node, "ens4", journey_fields=True)
    for spec in (on_client, on_server):
        await until(lambda spec=spec: sum(p.dport == 9 for p in seen.of(spec)) >= 200, f"200 on {spec.key}")  # type: ignore[misc]
    # between the nodes the datagrams travel in VXLAN: the wire stream shows the outer and inner headers
    await until(lambda: sum(p.vni is not None and p.dport == 9 for p in seen.of(on_wire)) >= 200, "vxlan")
    wire = next(p for p in seen.of(on_wire) if p.vni is not None)
    assert (wire.outer_src, wire.outer_dst, wire.src, wire.dst) == (
        "10.168.0.4",
        "10.168.0.5",
        "10.0.1.15",
        "10.0.2.215",
    )
    assert all(p.dport == 9 for p in seen.of(on_client))  # its filter holds
    await captures.close_all()
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
    assert all(seen.state(s) is StreamState.STOPPED for s in specs)
    await no_capture_left(state)


async def test_restarts_lose_no_packet_and_the_recording_matches_the_numbers(
    state: LabState, tmp_path: Path
) -> None:
    node, veth, netns = pod_of(state, WRK1)
    sessions = sessions_of(state)
    captures = CaptureStreams(sessions, restart_after=400)  # several tshark runs for 2000 datagrams
    spec = StreamSpec(node, veth, "udp port 9", journey_fields=True)
    seen = Seen()
    try:
        task = start(captures, spec, seen, record_dir=tmp_path)
        await until(lambda: seen.state(spec) is StreamState.CAPTURING, "capturing")
        await send_udp(netns, 2000, gap=0.0025)  # ~5 s: time for several restarts
        await until_count(seen, spec, 2000, timeout=15)
        await captures.close(spec)
        await asyncio.wait_for(task, WAIT)
    finally:
        await captures.close_all()
        await asyncio.gather(*(s.close() for s in sessions.values()))
    reasons = [s.reason for s in seen.statuses[spec]]
    assert sum(r.startswith("restarted tshark after") for r in reasons) >= 2
    packets = seen.of(spec)
    assert len(packets) == 2000 and len({p.ip_id for p in packets}) == 2000, f"each once: {reasons}"
    assert [p.number for p in packets] == sorted({p.number for p in packets})
    recording = captures.pcapng_path(spec)
    assert recording is not None
    ids = frame_ip_ids(recording)
    assert all(ids.get(p.number) == p.ip_id for p in packets), "packet N of the stream is frame N"
    await no_capture_left(state)


PACED_SENDER = """
import socket, sys, time
rate, total = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n, start = 0, time.perf_counter()
while n < total:
    due = min(total, int((time.perf_counter() - start) * rate) + 1)
    while n < due:
        s.sendto(b"labyrinth", ("10.0.2.215", 9))
        n += 1
    time.sleep(0.001)  # why: the sender paces itself to `rate` in 1 ms steps; nothing to wait on
"""


async def test_restarts_under_load_lose_no_packet_while_the_new_tshark_starts(
    state: LabState, tmp_path: Path
) -> None:
    """5k datagrams/s through tshark swaps, each new tshark taking 1.5 s to start reading (a loaded
    node). The relay keeps feeding the running tshark until the new one sleeps on its stdin, then swaps
    at a packet boundary: nothing lost or doubled. (With the first design — two overlapping captures
    handed over at a canary — each hand-off here lost thousands of datagrams.)"""
    slow = tmp_path / "slow-bin"
    slow.mkdir()
    wrapper = slow / "tshark"
    wrapper.write_text(f'#!/bin/sh\nsleep 1.5\nexec {shutil.which("tshark")} "$@"\n')
    wrapper.chmod(0o755)
    node, veth, netns = pod_of(state, WRK1)
    sessions = sessions_of(state)
    path = f"PATH={slow}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    captures = CaptureStreams(sessions, restart_after=2000, privilege=("env", path))
    spec = StreamSpec(node, veth, "udp port 9", journey_fields=True)
    seen = Seen()
    total = 30_000  # 6 s: each run is 2000 packets, then ~1.7 s more while its successor starts
    try:
        task = start(captures, spec, seen)
        await until(lambda: seen.state(spec) is StreamState.CAPTURING, "capturing", timeout=30)
        sender = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, "python3", "-c", PACED_SENDER, "5000", str(total)
        )
        assert await asyncio.wait_for(sender.wait(), WAIT) == 0
        await until_count(seen, spec, total, timeout=20)
        await captures.close(spec)
        await asyncio.wait_for(task, WAIT)
    finally:
        await captures.close_all()
        await asyncio.gather(*(s.close() for s in sessions.values()))
    reasons = [s.reason for s in seen.statuses[spec]]
    assert sum(r.startswith("restarted tshark after") for r in reasons) >= 2, reasons
    packets = seen.of(spec)
    assert len(packets) == total and len({p.ip_id for p in packets}) == total, f"each once: {reasons}"
    await no_capture_left(state)


async def test_a_live_streams_packets_are_dissected_and_saved_while_it_runs(
    state: LabState, tmp_path: Path
) -> None:
    """Enter on a packet of a running stream: tshark on the node dissects it from the run's recording
    (written as packets pass). Export: the packets so far as pcapng. Across a restart, too."""
    node, veth, netns = pod_of(state, WRK1)
    sessions = sessions_of(state)
    captures = CaptureStreams(sessions, restart_after=300)
    spec = StreamSpec(node, veth, "udp port 9", journey_fields=True)
    seen = Seen()
    try:
        task = start(captures, spec, seen, record_dir=tmp_path / "kept")
        await until(lambda: seen.state(spec) is StreamState.CAPTURING, "capturing")
        await send_udp(netns, 600, gap=0.004)  # ~2.5 s: at least one restart
        await until_count(seen, spec, 600)
        assert any(s.reason.startswith("restarted tshark") for s in seen.statuses[spec])
        packets = seen.of(spec)
        for packet in (packets[5], packets[-1]):  # one from the first tshark run, one from the current
            found = await captures.live_dissection(spec, packet.number)
            assert found is not None and found.number == packet.number
            assert [layer.name for layer in found.layers][:4] == ["frame", "eth", "ip", "udp"]
            ip = next(layer for layer in found.layers if layer.name == "ip")
            shown = {f.name: f.show for f in ip.fields}
            assert int(shown["ip.id"], 16) == packet.ip_id  # tshark on the node read that very packet
            assert int.from_bytes(found.data[18:20], "big") == packet.ip_id  # and its bytes came back
        target = tmp_path / "so-far.pcapng"
        assert await captures.save_live(spec, target) == ""  # whole: no note
        assert target.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # pcapng, as promised
        ids = frame_ip_ids(target)
        assert all(ids.get(p.number) == p.ip_id for p in packets), "packet N of the stream is frame N"
        assert seen.state(spec) is StreamState.CAPTURING  # the stream went on meanwhile
        assert await captures.live_dissection(spec, packets[-1].number + 10_000) is None  # not yet seen
        await captures.close(spec)
        await asyncio.wait_for(task, WAIT)
        assert await captures.live_dissection(spec, packets[5].number) is None  # closed: not live
        assert await captures.save_live(spec, target) is None
    finally:
        await captures.close_all()
        await asyncio.gather(*(s.close() for s in sessions.values()))
    await no_capture_left(state)


async def test_an_unrecorded_stream_saves_its_current_run_and_says_so(
    state: LabState, tmp_path: Path
) -> None:
    """Without a record_dir a run's file is deleted at its hand-off (bounded disk on the node): the
    export holds the current run only, says from which packet, and frame 1 is that packet."""
    node, veth, netns = pod_of(state, WRK1)
    sessions = sessions_of(state)
    captures = CaptureStreams(sessions, restart_after=300)
    spec = StreamSpec(node, veth, "udp port 9", journey_fields=True)
    seen = Seen()
    try:
        task = start(captures, spec, seen)
        await until(lambda: seen.state(spec) is StreamState.CAPTURING, "capturing")
        await send_udp(netns, 600, gap=0.004)
        await until_count(seen, spec, 600)
        packets = seen.of(spec)
        assert await captures.live_dissection(spec, packets[0].number) is None  # its run's file is gone
        target = tmp_path / "latest.pcapng"
        note = await captures.save_live(spec, target)
        assert note is not None and note.startswith("packets from #")
        first = int(note.split("#")[1].split()[0].replace(",", ""))
        ids = frame_ip_ids(target)
        later = [p for p in packets if p.number >= first]
        assert later and all(ids.get(p.number - first + 1) == p.ip_id for p in later)
        assert not list(tmp_path.glob("*.part"))
        await captures.close(spec)
        await asyncio.wait_for(task, WAIT)
    finally:
        await captures.close_all()
        await asyncio.gather(*(s.close() for s in sessions.values()))
    await no_capture_left(state)


async def test_a_bad_filter_fails_in_tsharks_words_and_starts_nothing(
    state: LabState, captures: CaptureStreams
) -> None:
    spec = StreamSpec("node-1", "ens4", "tcp port eighty", journey_fields=True)
    seen = Seen()
    await asyncio.wait_for(captures.open(spec, seen.emit), WAIT)
    assert seen.state(spec) is StreamState.FAILED
    assert (
        "That string isn't a valid capture filter (unknown port 'eighty')." in seen.statuses[spec][-1].reason
    )
    assert not seen.of(spec)
    assert not any(captures_running(state).values())


async def test_a_missing_interface_fails_with_its_name(captures: CaptureStreams) -> None:
    spec = StreamSpec("node-1", "nosuch0", journey_fields=True)
    seen = Seen()
    await asyncio.wait_for(captures.open(spec, seen.emit), WAIT)
    assert seen.state(spec) is StreamState.FAILED
    assert 'There is no device named "nosuch0"' in seen.statuses[spec][-1].reason


async def test_an_interface_that_vanishes_fails_the_stream_and_leaves_nothing(
    state: LabState, captures: CaptureStreams
) -> None:
    netns = node_netns(state, "node-1")
    add = ["ip", "-n", netns, "link", "add", "tvan0", "type", "veth", "peer", "name", "tvan1"]
    subprocess.run(add, check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "tvan0", "up"], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "tvan1", "up"], check=True)
        spec = StreamSpec("node-1", "tvan0", journey_fields=True)
        seen = Seen()
        task = start(captures, spec, seen)
        await until(lambda: seen.state(spec) is StreamState.CAPTURING, "capturing")
    finally:
        subprocess.run(["ip", "-n", netns, "link", "del", "tvan0"], capture_output=True)
    await asyncio.wait_for(task, WAIT)
    assert seen.state(spec) is StreamState.FAILED
    assert "tshark on node-1/tvan0 ended" in seen.statuses[spec][-1].reason
    await no_capture_left(state)


def sshd_sessions(state: LabState, node: str) -> list[int]:
    """The per-connection sshd processes of a node (children of its listening sshd)."""
    parent = next(n.sshd_pid for n in state.nodes if n.name == node)
    found = []
    for pid in pids_in([node_netns(state, node)])[node_netns(state, node)]:
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            found.append(pid)
    return found


async def test_a_dropped_connection_fails_the_stream_and_the_node_ends_tshark(
    state: LabState, captures: CaptureStreams
) -> None:
    node, veth, _ = pod_of(state, WRK1)
    spec = StreamSpec(node, veth, journey_fields=True)
    seen = Seen()
    task = start(captures, spec, seen)
    await until(lambda: seen.state(spec) is StreamState.CAPTURING, "capturing")
    assert captures_running(state)[node_netns(state, node)] >= 2
    for pid in sshd_sessions(state, node):  # our own connections' sshd: the connection drops
        os.kill(pid, signal.SIGKILL)
    await asyncio.wait_for(task, WAIT)
    assert seen.state(spec) is StreamState.FAILED
    assert "connection lost" in seen.statuses[spec][-1].reason
    await no_capture_left(state)


def capture_workdir(state: LabState, node: str) -> Path:
    """The folder the node's capture records into (the relay's file prefix, its first argument)."""
    netns = node_netns(state, node)
    for pid in pids_in([netns])[netns]:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 3 and argv[1] == b"-c" and argv[3].startswith(b"/tmp/labyrinth-cap-"):
            return Path(argv[3].decode()).parent
    raise AssertionError(f"no capture relay on {node}")


def test_a_killed_capture_command_leaves_no_tshark(lab_prefix: str, state: LabState) -> None:
    node, veth, _ = pod_of(state, WRK1)
    proc = subprocess.Popen(
        [*LABYRINTH, "capture", node, veth, "--prefix", lab_prefix],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().endswith("starting: checking the capture filter\n")
        said = proc.stderr.readline().strip()
        if said.endswith("starting: recording; tshark starting"):  # the node's relay had it first
            said = proc.stderr.readline().strip()
        assert said == f"{node}/{veth} capturing"
        wait_until(lambda: captures_running(state)[node_netns(state, node)] >= 2, WAIT, "tshark running")
        workdir = capture_workdir(state, node)
        assert workdir.is_dir()
    finally:
        proc.kill()  # SIGKILL: no chance to clean up; the node must do it
        proc.wait()
    wait_until(lambda: not any(captures_running(state).values()), 15, "no tshark/tcpdump/dumpcap left")
    wait_until(lambda: not workdir.exists(), 15, f"{workdir} removed by the node")


def test_capture_cli_json_count_and_pcapng(lab_prefix: str, state: LabState, tmp_path: Path) -> None:
    node, veth, netns = pod_of(state, WRK1)
    out = tmp_path / "five.pcapng"
    sender = subprocess.Popen(  # datagrams until the capture has its five (bounded: 60 s)
        ["ip", "netns", "exec", netns, "python3", "-c",
         "import socket,time\ns=socket.socket(2,2)\nfor i in range(6000):\n"
         " s.sendto(b'x',('10.0.2.215',9)); time.sleep(0.01)"],
    )  # fmt: skip
    try:
        done = subprocess.run(
            [
                *LABYRINTH,
                "capture",
                node,
                veth,
                "-f",
                "udp port 9",
                "-c",
                "5",
                "-w",
                str(out),
                "--json",
                "--prefix",
                lab_prefix,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        sender.kill()
        sender.wait()
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 5
    assert {(p["src"], p["dst"], p["protocol"], p["dport"]) for p in lines} == {
        ("10.0.1.15", "10.0.2.215", "UDP", 9)
    }
    assert all(p["node"] == node and p["interface"] == veth for p in lines)
    read = subprocess.run(
        ["tshark", "-r", str(out), "-T", "fields", "-e", "ip.id"], capture_output=True, text=True, check=True
    )
    assert [int(i, 16) for i in read.stdout.split()] == [p["ip_id"] for p in lines]
    wait_until(lambda: not any(captures_running(state).values()), 15, "no tshark/tcpdump/dumpcap left")


async def test_a_cluster_source_streams_over_its_node_sessions_and_close_ends_them(
    state: LabState, tmp_path: Path
) -> None:
    from labyrinth_tui.cloud.bootstrap.inventory import Inventory, NodeEntry
    from labyrinth_tui.sources.cluster import ClusterSource

    inventory = Inventory("lab", tuple(NodeEntry(n.name, user="root") for n in state.nodes))
    source = ClusterSource(tmp_path / "kubeconfig", inventory=inventory)
    source.sessions.update(sessions_of(state))  # what its discovery would have opened
    node, veth, netns = pod_of(state, WRK1)
    spec = StreamSpec(node, veth, "udp port 9", journey_fields=True)
    seen = Seen()
    task = asyncio.create_task(source.open_stream(spec, seen.emit))
    try:
        await until(lambda: seen.state(spec) is StreamState.CAPTURING, "capturing")
        await send_udp(netns, 50)
        await until(lambda: len(seen.of(spec)) >= 50, "50 datagrams")
    finally:
        await source.close()
    await asyncio.wait_for(task, WAIT)
    assert seen.state(spec) is StreamState.STOPPED
    assert {(p.src, p.dst, p.dport) for p in seen.of(spec)} == {("10.0.1.15", "10.0.2.215", 9)}
    await no_capture_left(state)


async def test_the_journey_joins_a_stream_already_open_on_a_hop_and_leaves_it_running(
    state: LabState, captures: CaptureStreams
) -> None:
    sessions = captures.sessions
    topology = await discover_lab(state, dict(sessions))
    plan = await plan_journey(topology, JourneyRequest(), sessions)
    ens4 = next(s for s in hop_specs(plan) if (s.node, s.interface) == ("node-1", "ens4"))
    user = Seen()
    task = start(captures, ens4, user)
    await until(lambda: user.state(ens4) is StreamState.CAPTURING, "the user's stream on node-1/ens4")
    started = len(user.statuses[ens4])
    journey = Seen()
    report = await run_journey(
        state, captures=captures, sessions=sessions, topology=topology, emit=journey.emit
    )
    hop = next(s for s in report.streams if (s.node, s.interface) == ("node-1", "ens4"))
    assert hop.state == "capturing" and hop.packets > 0
    handshake = report.handshake
    assert handshake is not None and handshake.complete and handshake.syn is not None
    # not restarted: the user's stream said nothing new (no second filter check, no stop) …
    assert len(user.statuses[ens4]) == started and user.state(ens4) is StreamState.CAPTURING
    # … and counted the journey's packets: the SYN the journey saw on node-1/ens4 is the user's packet
    on_ens4 = [o for o in handshake.syn.observations if (o.node, o.interface) == ("node-1", "ens4")]
    assert len(on_ens4) == 1
    assert on_ens4[0] in user.of(ens4)
    assert len(user.of(ens4)) >= hop.packets
    assert journey.of(ens4) == []  # the journey's own events for a joined stream are not forwarded twice
    # the journey has closed its captures; the user's stream still runs and still sees new packets
    assert captures.is_live(ens4) and not task.done()
    before = len(user.of(ens4))
    _, _, wrk1_netns = pod_of(state, WRK1)
    await send_udp(wrk1_netns, 5)  # to the wrk-2 pod: VXLAN on node-1's ens4, udp port 8472
    await until_count(user, ens4, before + 5)
    await captures.close(ens4, user.emit)
    await task
    assert user.state(ens4) is StreamState.STOPPED


async def test_a_second_journey_joins_the_captures_the_first_kept_warm(
    state: LabState, captures: CaptureStreams
) -> None:
    sessions = captures.sessions
    topology = await discover_lab(state, dict(sessions))
    specs = hop_specs(await plan_journey(topology, JourneyRequest(), sessions))
    closing: set[asyncio.Future[Any]] = set()
    first = Seen()
    await run_journey(
        state, captures=captures, sessions=sessions, topology=topology, emit=first.emit,
        keep_warm=60.0, linger=closing,
    )  # fmt: skip
    await asyncio.gather(*closing)
    assert all(captures.is_live(s) and not captures.is_watched(s) for s in specs)  # warm, unread
    assert all(first.state(s) is StreamState.STOPPED for s in specs)  # for the first journey: closed
    second = Seen()
    report = await run_journey(
        state, captures=captures, sessions=sessions, topology=topology, emit=second.emit
    )
    assert report.handshake is not None and report.handshake.complete
    for spec in specs:  # proven at once: no filter check, no canary, the same tshark
        said = [s.state for s in second.statuses[spec]]
        assert said == [StreamState.CAPTURING, StreamState.STOPPED], (spec.key, said)
    assert all(s.packets > 0 for s in report.streams)
    await no_capture_left(state)  # the second kept nothing warm: its leaving stopped them
