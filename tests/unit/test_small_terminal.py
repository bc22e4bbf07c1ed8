"""At 80 columns the main screen shows one pane at a time; at 120 all of them, as before."""

from __future__ import annotations

from pathlib import Path

from labyrinth_tui.sources import StreamSpec
from labyrinth_tui.sources.replay import ReplaySource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.details_panel import DetailsPanel
from labyrinth_tui.ui.widgets.streams_area import StreamsArea
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree
from tests.fakes.article import CLIENT_VETH
from tests.fakes.article_bundle import write_article_bundle
from tests.fakes.waiting import settle


def _shown(screen: MainScreen) -> list[str]:
    """Which of the three panes a user sees (on screen and not hidden by the layout)."""
    panes = {"topology": TopologyTree, "streams": StreamsArea, "details": DetailsPanel}
    return [name for name, kind in panes.items() if screen.query_one(kind).region.area > 0]


async def test_narrow_shows_one_pane_and_v_switches(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 30), speed=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await settle(pilot, lambda: _shown(screen) == ["topology"], "the topology pane alone")
        await pilot.press("v")
        await settle(pilot, lambda: _shown(screen) == ["streams"], "the streams pane alone")
        await pilot.press("v")
        await settle(pilot, lambda: _shown(screen) == ["details"], "the details pane alone")
        await pilot.press("t")
        await settle(pilot, lambda: _shown(screen) == ["topology"], "t back to the tree")


async def test_opening_a_stream_when_narrow_shows_the_streams_pane(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 30), speed=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await screen.open_stream(StreamSpec("node-1", CLIENT_VETH))
        await settle(pilot, lambda: _shown(screen) == ["streams"], "the streams pane with the new stream")
        pane = screen.query_one(StreamsArea).panes[0]
        await settle(pilot, lambda: pane.packets.has_focus, "its packets to have the keyboard")


async def test_wide_shows_every_pane_and_no_view_bar(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 30), speed=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await settle(pilot, lambda: _shown(screen) == ["topology", "streams", "details"], "all three panes")
        assert screen.query_one("#view-tabs").region.area == 0
        await pilot.press("v")  # not a key here: nothing changes
        await pilot.pause()
        assert _shown(screen) == ["topology", "streams", "details"]


async def test_tree_lines_fit_the_pane_and_keep_the_pod_suffix(tmp_path: Path) -> None:
    """At 120 columns the tree is 48 wide: each pod's line fits beside its IP, its name cut in the middle
    with the distinguishing suffix kept; nothing scrolls sideways."""
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 30), speed=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        tree = app.screen.query_one(TopologyTree)
        await settle(pilot, lambda: tree.last_line > 3, "the topology")
        nodes = [tree.get_node_at_line(line) for line in range(tree.last_line + 1)]
        pods = [
            n for n in nodes if n is not None and n.data is not None and n.data.pod and n.data.kind == "pod"
        ]
        assert pods
        room = tree.scrollable_content_region.width
        for node in pods:
            assert node.data is not None and node.data.pod is not None
            pod = node.data.pod
            line = tree.render_label(node, tree.rich_style, tree.rich_style).plain
            depth = 3 * tree.guide_depth  # cluster → node → pods → pod
            assert len(line) + depth <= room, line
            assert line.endswith(pod.ip) and pod.name.rsplit("-", 1)[1] in line, line
        assert tree.virtual_size.width <= room  # no sideways scrolling
