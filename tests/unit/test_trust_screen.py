"""Outside text on the screen: inert through the CLI's one door and the UI's, and node errors that name
the command a person ran ("tcpdump on node-1/ens4"), never the shell wrapper around it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.model.topology import Interface, InterfaceKind, Node, Topology
from labyrinth_tui.nodes.commands import (
    describe,
    end_process_group,
    ended_with_reader,
    in_netns,
    in_process_group,
)
from labyrinth_tui.nodes.errors import CommandFailed, ConnectionLost, NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.capture import Relay, capture_argv, filter_check_argv
from labyrinth_tui.probes.capture_parse import SummaryParser
from labyrinth_tui.probes.capture_ready import canary_filter
from labyrinth_tui.sources import ProgressEvent, StreamSpec, StreamState, StreamStatus, TopologyEvent
from labyrinth_tui.ui.messages import SourceEventMessage
from tests.fakes.ssh_server import FakeNode
from tests.unit.test_node_session import connector

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\x1bPq#0\x1b\\"
WRAPPER = "i=$1"  # the reader watcher's script begins so; a person never typed it


def has_escape(text: str) -> bool:
    return any(c in text for c in "\x1b\x07\x9b\x9d")


def test_describe_names_the_command_not_its_wrappers() -> None:
    relay = Relay("/tmp/labyrinth-tq1-x/run", 1000, False)
    capture = capture_argv("ens4", canary_filter(""), buffer_mb=32, relay=relay)
    wrapped = ["sudo", "-n", *ended_with_reader(capture, workdir="/tmp/labyrinth-tq1-x")]
    assert describe(wrapped, "node-1") == "tcpdump on node-1/ens4"
    assert describe(in_process_group(wrapped), "node-1") == "tcpdump on node-1/ens4"
    assert describe(["sudo", "-n", *filter_check_argv("ens4", "")], "node-1") == "dumpcap on node-1/ens4"
    assert describe(["ip", "-j", "addr"], "node-2") == "`ip -j addr` on node-2"
    assert (
        describe(in_netns("tq1.n1", ["ip", "-j", "addr"]), "node-2")
        == "`ip -j addr` on node-2 (netns tq1.n1)"
    )
    assert describe(end_process_group(4242), "node-1") == "ending process group 4242 on node-1"


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeNode]:
    node = await FakeNode(tmp_path).start()
    try:
        yield node
    finally:
        await node.close()


async def test_a_lost_session_names_the_command_not_the_wrapper(fake: FakeNode, tmp_path: Path) -> None:
    async with NodeSession("node-2", connector(fake, tmp_path)) as node:
        with pytest.raises(ConnectionLost) as streamed:
            async with node.stream(ended_with_reader(["drop"])) as lines:
                assert await anext(lines) == "partial output"
                await anext(lines)
        with pytest.raises(ConnectionLost) as ran:
            await node.run(ended_with_reader(["drop", "now"]), timeout=10)
        with pytest.raises(CommandFailed) as failed:
            await node.run(["fail", "4"])
    assert "`drop` on node-2: connection lost" in str(streamed.value)
    assert "`drop now` on node-2: connection lost" in str(ran.value)
    assert "`fail 4` on node-2 exited 4: fake: failing as asked" in str(failed.value)
    for error in (streamed.value, ran.value, failed.value):
        assert WRAPPER not in str(error) and "sh -c" not in str(error)


def test_a_node_error_never_carries_an_escape() -> None:
    error = NodeError("node-1", f"sshd said {ESCAPES}no")
    assert not has_escape(str(error)) and error.reason == "sshd said no"
    failed = CommandFailed("node-1", ["ip", "-j", "addr"], 1, f"Error: {ESCAPES}bad\n")
    assert not has_escape(str(failed)) and "Error: bad" in str(failed)


def test_every_event_entering_the_ui_is_inert_and_clean_ones_pass_untouched() -> None:
    evil = Node(
        name=f"node-1{ESCAPES}",
        address="10.0.0.1",
        error=f"discovery: {ESCAPES}",
        interfaces=(Interface(f"eth{ESCAPES}0", 2, InterfaceKind.DEVICE),),
    )
    shown = SourceEventMessage(TopologyEvent(Topology("lab", nodes=(evil,)))).event
    assert isinstance(shown, TopologyEvent)
    node = shown.topology.nodes[0]
    assert (node.name, node.error, node.interfaces[0].name) == ("node-1", "discovery: ", "eth0")
    step = Step("node-1", "ssh", StepState.FAILED, log=f"Permission denied{ESCAPES}\nline two")
    logged = SourceEventMessage(ProgressEvent(step)).event
    assert isinstance(logged, ProgressEvent) and logged.step.log == "Permission denied\nline two"
    status = StreamStatus(StreamSpec("node-1", "ens4"), StreamState.FAILED, f"tshark: {ESCAPES}gone")
    failed = SourceEventMessage(status).event
    assert isinstance(failed, StreamStatus) and failed.reason == "tshark: gone"
    clean = TopologyEvent(Topology("lab", nodes=(Node("node-1", "10.0.0.1"),)))
    assert SourceEventMessage(clean).event is clean


def test_a_capture_line_with_raw_escapes_becomes_an_inert_packet() -> None:
    parser = SummaryParser("node-1", "ens4")
    fields = ["1700000000.5", "1", "60", f"10.0.0.1{ESCAPES}", "1234", "10.0.0.2", "80", f"TCP{ESCAPES}"]
    line = "\t".join([*fields, "0x0002", "1", "0", "0x1c46", "", "", "", "", f"SYN{ESCAPES} window"])
    (packet,) = parser.parse_many([line])
    assert (packet.src, packet.protocol, packet.info) == ("10.0.0.1", "TCP", "SYN window")


def test_the_cli_prints_no_escape_whatever_it_is_given(tmp_path: Path) -> None:
    crafted = tmp_path / f"bundle{ESCAPES}"
    done = subprocess.run(
        [sys.executable, "-m", "labyrinth_tui", "replay", "--json", str(crafted)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and b"Traceback" not in done.stderr
    assert b"is not a recording" in done.stderr or b"does not exist" in done.stderr, done.stderr
    assert not any(b in done.stdout + done.stderr for b in (b"\x1b", b"\x07", b"\xc2\x9b"))
