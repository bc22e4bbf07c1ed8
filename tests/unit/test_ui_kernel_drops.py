"""A stream's kernel drops in its pane: shown as the kernel's count comes, never hidden by a quiet stream."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from labyrinth_tui.sources import StreamDrops, StreamSpec, StreamState
from labyrinth_tui.sources.replay import ReplaySource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.stream_pane import StreamPane
from tests.fakes.article import CLIENT_VETH
from tests.fakes.article_bundle import write_article_bundle
from tests.fakes.waiting import plain, settle


async def test_each_new_kernel_count_shows_in_the_header_though_no_packet_came(tmp_path: Path) -> None:
    """tcpdump's count can grow while nothing reaches the pane (a burst the kernel dropped whole, or
    the last count said at the stream's end): the header must say it all the same."""
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 30), speed=0))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await app.workers.wait_for_complete()
        spec = StreamSpec("node-1", CLIENT_VETH)
        await screen.open_stream(spec)
        await app.workers.wait_for_complete()
        pane = screen.query_one(StreamPane)
        pane.set_state(StreamState.CAPTURING)
        counts = pane.query_one(".stream-counts", Static)

        def header() -> str:
            return plain(counts.render())

        await settle(pilot, lambda: "pkts" in header(), "the counts line")
        assert "kernel dropped" not in header()
        screen.emit(StreamDrops(spec, 15_327))
        await settle(pilot, lambda: "kernel dropped 15327" in header(), "the first count", timeout=2)
        screen.emit(StreamDrops(spec, 15_364))  # only the count changed
        await settle(pilot, lambda: "kernel dropped 15364" in header(), "the new count", timeout=2)
        screen.emit(StreamDrops(spec, 100))  # an older report arriving late never lowers it
        await pilot.pause()
        assert "kernel dropped 15364" in header()
