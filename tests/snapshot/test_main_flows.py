"""Snapshots of the main screen driven by the shipped recording of the article's journey (ReplaySource)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from labyrinth_tui.sources import StreamSpec, StreamState
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE
from labyrinth_tui.sources.replay import ReplaySource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.screens.packet_detail import PacketDetailScreen
from labyrinth_tui.ui.widgets.stream_pane import StreamPane
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree
from tests.fakes.waiting import settle
from tests.snapshot.bundles import article, variant

LXC1 = next(
    s.spec.interface
    for s in article().streams
    if s.spec.node == "node-1" and s.spec.interface.startswith("lxc")
)


async def _ready(pilot: Pilot[None]) -> MainScreen:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    return screen


async def _open(pilot: Pilot[None], *specs: StreamSpec) -> MainScreen:
    screen = await _ready(pilot)
    for spec in specs:
        await screen.open_stream(spec)
    await pilot.app.workers.wait_for_complete()
    panes = list(screen.query(StreamPane))
    await settle(
        pilot,
        lambda: all(
            p.state is not StreamState.STARTING and p.packets.virtual_size.height == len(p.packets.ring)
            for p in panes
        ),
        "every pane to take and show all its packets",
    )
    await pilot.pause()
    return screen


class TestMainScreen:
    def test_tree_expanded_with_details(self, snap_compare: Any) -> None:
        """node-1's interfaces opened, cilium_vxlan highlighted: the details panel shows VNI 2 on UDP 8472."""

        async def run_before(pilot: Pilot[None]) -> None:
            screen = await _ready(pilot)
            tree = screen.query_one(TopologyTree)
            tree.root.expand_all()
            await pilot.pause()
            for line in range(tree.last_line + 1):
                node = tree.get_node_at_line(line)
                ref = node.data if node is not None else None
                if (
                    ref
                    and ref.node
                    and ref.interface
                    and (ref.node.name, ref.interface.name)
                    == (
                        "node-1",
                        "cilium_vxlan",
                    )
                ):
                    tree.cursor_line = line
            await pilot.pause()

        assert snap_compare(
            make_app(ReplaySource(ARTICLE_BUNDLE, speed=0)), terminal_size=(120, 40), run_before=run_before
        )

    def test_four_streams_open(self, snap_compare: Any) -> None:
        """The client's lxc, cilium_vxlan and ens4 on node-1 and ens4 on node-2, in a 2 × 2 grid."""

        async def run_before(pilot: Pilot[None]) -> None:
            await _open(
                pilot,
                StreamSpec("node-1", LXC1),
                StreamSpec("node-1", "cilium_vxlan"),
                StreamSpec("node-1", "ens4"),
                StreamSpec("node-2", "ens4"),
            )

        assert snap_compare(
            make_app(ReplaySource(ARTICLE_BUNDLE, speed=0)), terminal_size=(220, 50), run_before=run_before
        )

    def test_paused_stream_counts_new_packets(self, snap_compare: Any) -> None:
        """Paused on the client's lxc while 16 more packets arrive: the header says "+16 new"."""

        async def run_before(pilot: Pilot[None]) -> None:
            screen = await _open(pilot, StreamSpec("node-1", LXC1))
            pane = screen.query_one(StreamPane)
            pane.packets.focus()
            await pilot.press("space", "home")
            pane.add(tuple(pane.packets.ring))
            counts = pane.query_one(".stream-counts")
            await settle(pilot, lambda: "+16 new" in str(counts.render()), "the header to count +16 new")

        assert snap_compare(
            make_app(ReplaySource(ARTICLE_BUNDLE, speed=0)), terminal_size=(140, 36), run_before=run_before
        )

    def test_invalid_capture_filter(self, snap_compare: Any, tmp_path: Path) -> None:
        """A capture filter tshark refuses: the stream fails at once with the reason its source recorded,
        dumpcap's own words (bundles.INVALID_FILTER, checked against the real dumpcap in the unit tests)."""

        async def run_before(pilot: Pilot[None]) -> None:
            await _open(pilot, StreamSpec("node-1", "ens4", "port eighty"))

        app = make_app(ReplaySource(variant(tmp_path / "b"), speed=0))
        assert snap_compare(app, terminal_size=(140, 30), run_before=run_before)

    def test_node_unreachable(self, snap_compare: Any, tmp_path: Path) -> None:
        """node-0's sshd does not answer: it is marked unreachable with the reason; node-1 and node-2 show."""
        app = make_app(ReplaySource(variant(tmp_path / "b", unreachable="node-0"), speed=0))
        assert snap_compare(app, terminal_size=(120, 30), run_before=_ready)

    def test_provisioning_in_progress(self, snap_compare: Any, tmp_path: Path) -> None:
        """Provisioning halfway: done, running (with its log line), pending and failed steps."""
        app = make_app(ReplaySource(variant(tmp_path / "b", in_progress=True), speed=0))
        assert snap_compare(app, terminal_size=(120, 30), run_before=_ready)


class TestPacketDetail:
    def test_syn_on_the_clients_lxc(self, snap_compare: Any) -> None:
        """The SYN to the ClusterIP on the client's lxc: summary, dissection tree (IP, TCP open), bytes."""
        source = ReplaySource(ARTICLE_BUNDLE, speed=0)
        stream = article().stream_for("node-1", LXC1)
        assert stream is not None and stream.packets_file is not None
        from labyrinth_tui.sources.bundle import read_packets

        syn = next(p for p in read_packets(stream.packets_file) if p.tcp_flags == "SYN")

        async def run_before(pilot: Pilot[None]) -> None:
            await _ready(pilot)
            await pilot.app.push_screen(PacketDetailScreen(source, stream.spec, syn))
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()

        assert snap_compare(make_app(source), terminal_size=(140, 44), run_before=run_before)
