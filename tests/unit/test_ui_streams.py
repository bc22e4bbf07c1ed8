"""Driving streams with the keyboard, on a replayed bundle: open, pause (+N new), filter, clear, close."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Static

from labyrinth_tui.sources import StreamLag, StreamSpec, StreamState
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE
from labyrinth_tui.sources.replay import ReplaySource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.packet_list import PacketList
from labyrinth_tui.ui.widgets.stream_pane import StreamPane
from labyrinth_tui.ui.widgets.streams_area import StreamsArea
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree
from tests.fakes.article import CLIENT_VETH
from tests.fakes.article_bundle import write_article_bundle
from tests.fakes.waiting import plain, settle


def _line_of(tree: TopologyTree, node_name: str, iface: str) -> int:
    tree.root.expand_all()
    for line in range(tree.last_line + 1):
        node = tree.get_node_at_line(line)
        ref = node.data if node is not None else None
        names = (ref.node.name, ref.interface.name) if ref and ref.node and ref.interface else None
        if names == (node_name, iface):
            return line
    raise AssertionError(f"{node_name}/{iface} is not in the tree")


async def test_enter_on_a_pod_veth_opens_its_stream_with_packets(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 30), speed=0))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        tree = screen.query_one(TopologyTree)
        tree.focus()
        tree.cursor_line = _line_of(tree, "node-1", CLIENT_VETH)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await settle(pilot, lambda: screen.query(StreamPane).first().packets.row_count == 30, "30 rows")
        pane = screen.query_one(StreamPane)
        assert pane.spec == StreamSpec("node-1", CLIENT_VETH)
        assert pane.state is StreamState.STOPPED and pane.reason == "end of recording"
        plist = pane.query_one(PacketList)
        assert plist.row_count == 30
        assert "10.105.134.33" in plist.render_line(0).text
        # at 120 columns a row begins with its number (what ties it to its dissection) and has its protocol
        top = plist.packet_at(int(plist.scroll_y))
        assert top is not None
        assert plist.render_line(0).text.split()[:1] == [str(top.number)]
        assert f" {top.protocol} " in plist.render_line(0).text

        # pause: the tail stops moving and new packets are counted as "+N new"
        await pilot.press("space")
        assert not plist.following
        plist.add(tuple(list(plist.ring)[:5]))
        counts = pane.query_one(".stream-counts")
        await settle(pilot, lambda: "+5 new" in str(counts.render()), "the header to count +5 new")
        assert plist.new_count == 5
        assert "+5 new" in str(pane.query_one(".stream-counts").render())
        await pilot.press("space")
        assert plist.following and plist.new_count == 0

        # display filter: only SYN-ACKs
        await pilot.press("slash")
        await pilot.press(*"SYN,", "space", *"ACK]")
        await pilot.press("enter")
        await settle(pilot, lambda: plist.row_count == 12, "the filtered rows")
        assert plist.row_count == 12  # 10 of the first 30 packets, 2 of the 5 added again
        shown = [plist.packet_at(row) for row in range(plist.row_count)]
        assert all(p is not None and p.tcp_flags == "SYN,ACK" for p in shown)

        await pilot.press("c")
        assert plist.row_count == 0 and plist.ring.total == 35

        await pilot.press("x")
        await pilot.pause()
        assert not screen.query(StreamPane)


async def test_four_streams_reflow_into_a_grid_and_tabs(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b"), speed=0))
    async with app.run_test(size=(200, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await app.workers.wait_for_complete()
        for node, iface in [
            ("node-1", CLIENT_VETH),
            ("node-1", "cilium_vxlan"),
            ("node-1", "ens4"),
            ("node-2", "ens4"),
        ]:
            await screen.open_stream(StreamSpec(node, iface))
        await app.workers.wait_for_complete()
        await pilot.pause()
        area = screen.query_one(StreamsArea)
        assert len(area.panes) == 4
        grid = screen.query_one("#stream-grid")
        assert grid.styles.grid_size_columns == 2 and grid.styles.grid_size_rows == 2
        missing = area.pane(StreamSpec("node-2", "ens4"))
        assert missing is not None and missing.state is StreamState.FAILED
        assert missing.reason == "not in this recording"

        await pilot.press("g")
        await pilot.pause()
        assert sum(1 for p in area.panes if p.display) == 1
        assert screen.query_one("#stream-tabs").display


async def test_tree_shows_nodes_pods_and_details(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b"), speed=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        tree = app.screen.query_one(TopologyTree)
        labels = [str(tree.get_node_at_line(i).label) for i in range(tree.last_line + 1)]  # type: ignore[union-attr]
        assert any("wrk-1/node-wrk-1-ubuntu24-684f7d8fd6-2zncq" in label for label in labels)
        assert any(f"{CLIENT_VETH} ↔ eth0" in label for label in labels)
        tree.focus()
        tree.cursor_line = _line_of(tree, "node-1", "cilium_vxlan")
        await pilot.pause()
        details = plain(app.screen.query_one("#details", Static).content)
        assert "vni 2  udp 8472  local 10.168.0.4" in details
        assert "mtu 1410" in details


async def test_j_follows_the_articles_packet_from_the_shipped_recording() -> None:
    from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE
    from labyrinth_tui.ui.screens.journey import JourneyScreen

    app = make_app(ReplaySource(ARTICLE_BUNDLE, speed=0))
    async with app.run_test(size=(140, 44)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("j")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, JourneyScreen)
        syn = app.screen.report.handshake.syn  # type: ignore[union-attr]
        assert syn is not None
        assert [(h.node, h.interface) for h in syn.hops][:3] == [
            ("node-1", "lxc1ba60d50596c"),
            ("node-1", "cilium_vxlan"),
            ("node-1", "ens4"),
        ]


async def test_u_runs_the_tour_on_the_recording() -> None:
    from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE
    from labyrinth_tui.ui.screens.journey import TourScreen

    app = make_app(ReplaySource(ARTICLE_BUNDLE, speed=0))
    async with app.run_test(size=(140, 44)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("u")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TourScreen)
        passed = {s.title: s.passed for s in screen.steps}
        assert passed, "the tour ran"
        # recorded on the eBPF datapath with its evidence: every step passes, the last one is Cilium's
        assert all(passed.values()), passed
        assert passed["kube-proxy's counters stay at 0; tcx programs on every Cilium device"]


class _FullDisk(ReplaySource):
    async def save_pcapng(self, spec: StreamSpec, target: Path) -> str | None:
        raise OSError(28, "No space left on device")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder: where `e` saves."""
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    return out


async def _open_stream(app: App[None], pilot: Pilot[None], iface: str = CLIENT_VETH) -> StreamPane:
    await app.workers.wait_for_complete()
    await pilot.pause()
    tree = app.screen.query_one(TopologyTree)
    tree.focus()
    tree.cursor_line = _line_of(tree, "node-1", iface)
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await settle(
        pilot, lambda: app.screen.query(StreamPane).first().state is not StreamState.STARTING, "the stream"
    )
    pane = app.screen.query_one(StreamPane)
    pane.query_one(PacketList).focus()
    return pane


async def _export(app: App[None], pilot: Pilot[None]) -> list[str]:
    """Press e, let the export's worker finish; what the app said."""
    await pilot.press("e")
    await app.workers.wait_for_complete()
    await pilot.pause()
    return [str(n.message) for n in app._notifications]


async def test_e_saves_the_focused_stream_as_pcapng_in_the_working_folder(workdir: Path) -> None:
    app = make_app(ReplaySource(ARTICLE_BUNDLE, speed=0))  # the shipped recording has pcapng files
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open_stream(app, pilot, "lxc1ba60d50596c")
        recorded = app.screen.source.pcapng_path(pane.spec)  # type: ignore[attr-defined]
        said = await _export(app, pilot)
        saved = list(workdir.glob("labyrinth-node-1-*.pcapng"))
        assert len(saved) == 1 and saved[0].read_bytes() == recorded.read_bytes()
        assert any(f"saved {saved[0]}" in message for message in said)


async def test_a_failed_save_says_why_and_leaves_no_file(tmp_path: Path, workdir: Path) -> None:
    app = make_app(_FullDisk(write_article_bundle(tmp_path / "b", 30), speed=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_stream(app, pilot)
        said = await _export(app, pilot)
        assert not list(workdir.iterdir())
        assert any("No space left on device" in message for message in said)


async def test_e_on_a_stream_without_a_recording_says_so(tmp_path: Path, workdir: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 30), speed=0))  # summaries only
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_stream(app, pilot)
        said = await _export(app, pilot)
        assert not list(workdir.iterdir())
        assert any("is not recorded as pcapng" in message for message in said)


async def test_a_stream_behind_its_recording_says_so_until_it_has_caught_up(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 30), speed=0))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await app.workers.wait_for_complete()
        spec = StreamSpec("node-1", CLIENT_VETH)
        await screen.open_stream(spec)
        await app.workers.wait_for_complete()
        await pilot.pause()
        pane = screen.query_one(StreamPane)
        line = pane.query_one(".stream-reason", Static)
        pane.set_state(StreamState.CAPTURING)
        await pilot.pause()
        assert not line.display
        screen.emit(StreamLag(spec, 41_736, 3.3))
        await pilot.pause()
        assert line.display and str(line.render()) == "behind by 41,736 packets / 3.3 s, all recorded"
        screen.emit(StreamLag(spec, 0, 0.0))
        await pilot.pause()
        assert not line.display
