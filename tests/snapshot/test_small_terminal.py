"""Snapshots at 80×24, a projector's or a big-font laptop's size: every screen usable, nothing cut."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from labyrinth_tui.journey.tour import tour_steps
from labyrinth_tui.sources import StreamSpec
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE, read_packets
from labyrinth_tui.sources.journey_replay import report_from_bundle
from labyrinth_tui.sources.replay import ReplaySource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.journey import JourneyScreen, TourScreen
from labyrinth_tui.ui.screens.packet_detail import PacketDetailScreen
from labyrinth_tui.ui.widgets.journey_view import HopView
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree
from tests.fakes.article_journey import article_report
from tests.snapshot.bundles import article
from tests.snapshot.test_main_flows import LXC1, _open, _ready

SMALL = (80, 24)


def _replay() -> ReplaySource:
    return ReplaySource(ARTICLE_BUNDLE, speed=0)


class TestMainSmall:
    def test_topology_pods_keep_their_suffix(self, snap_compare: Any) -> None:
        """The topology pane alone under the Topology / Streams / Details bar: node-2's pods with their
        whole names and IPs (80 columns hold them), the cursor on the server pod."""

        async def run_before(pilot: Pilot[None]) -> None:
            screen = await _ready(pilot)
            tree = screen.query_one(TopologyTree)
            for line in range(tree.last_line + 1):
                node = tree.get_node_at_line(line)
                if node is not None and node.data is not None and node.data.kind == "pod":
                    tree.cursor_line = line  # the last pod: coredns on node-2
            tree.scroll_end(animate=False, immediate=True)
            await pilot.pause()

        assert snap_compare(make_app(_replay()), terminal_size=SMALL, run_before=run_before)

    def test_stream_opened_shows_the_streams_pane(self, snap_compare: Any) -> None:
        """Enter on the client's lxc switched to the Streams pane: its header (node · interface, counts)
        and rows of number, addresses, protocol and info (time and length gave way)."""

        async def run_before(pilot: Pilot[None]) -> None:
            await _open(pilot, StreamSpec("node-1", LXC1))

        assert snap_compare(make_app(_replay()), terminal_size=SMALL, run_before=run_before)

    def test_details_pane(self, snap_compare: Any) -> None:
        """`v` twice from the topology: the Details pane at full width for the client's pod (its netns
        and routes whole)."""

        async def run_before(pilot: Pilot[None]) -> None:
            screen = await _ready(pilot)
            tree = screen.query_one(TopologyTree)
            for line in range(tree.last_line + 1):
                node = tree.get_node_at_line(line)
                if node is not None and node.data is not None and node.data.kind == "pod":
                    tree.cursor_line = line
                    break  # the first pod: the client on node-1
            await pilot.press("v", "v")
            await pilot.pause()

        assert snap_compare(make_app(_replay()), terminal_size=SMALL, run_before=run_before)


class TestJourneySmall:
    def test_syn_hops_stacked(self, snap_compare: Any) -> None:
        """The recorded journey scrolled to the SYN: each hop on its lines — node, interface, direction,
        +µs; then the addresses whole; then the encap/decap with VNI 2 — nothing cut at the edge."""

        async def run_before(pilot: Pilot[None]) -> None:
            await pilot.app.push_screen(JourneyScreen(report_from_bundle()))
            await pilot.pause()
            hop = pilot.app.screen.query(HopView).first()
            hop.focus()
            hop.scroll_visible(top=True, animate=False, immediate=True)
            await pilot.pause()

        assert snap_compare(make_app(None), terminal_size=SMALL, run_before=run_before)

    def test_nat_hop_with_evidence(self, snap_compare: Any) -> None:
        """The article's synthetic run, SYN on node-1's cilium_vxlan: the DNAT line and kube-proxy's
        counters wrap under the hop instead of running off the screen."""

        async def run_before(pilot: Pilot[None]) -> None:
            await pilot.app.push_screen(JourneyScreen(article_report()))
            await pilot.pause()
            hop = list(pilot.app.screen.query(HopView))[1]
            hop.focus()
            hop.scroll_visible(top=True, animate=False, immediate=True)
            await pilot.pause()

        assert snap_compare(make_app(None), terminal_size=SMALL, run_before=run_before)


class TestTourSmall:
    def test_lost_syn(self, snap_compare: Any) -> None:
        """SYN lost after node-1's ens4: '5/7 steps passed', the steps' claims and what was seen wrapped."""
        report = article_report(drop_syn_after=3)

        async def run_before(pilot: Pilot[None]) -> None:
            await pilot.app.push_screen(TourScreen(tour_steps(report), report))
            await pilot.pause()

        assert snap_compare(make_app(None), terminal_size=SMALL, run_before=run_before)


class TestPacketSmall:
    def test_syn_dissection_over_its_bytes(self, snap_compare: Any) -> None:
        """The SYN on the client's lxc: summary, then the dissection (IP open) over the bytes, both full
        width, instead of side by side."""
        source = _replay()
        stream = article().stream_for("node-1", LXC1)
        assert stream is not None and stream.packets_file is not None
        syn = next(p for p in read_packets(stream.packets_file) if p.tcp_flags == "SYN")

        async def run_before(pilot: Pilot[None]) -> None:
            await _ready(pilot)
            await pilot.app.push_screen(PacketDetailScreen(source, stream.spec, syn))
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()

        assert snap_compare(make_app(source), terminal_size=SMALL, run_before=run_before)
