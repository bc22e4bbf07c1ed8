"""Memory a user keeps: closed streams are freed, round after round; a long-open list keeps a few screens."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.strip import Strip

from labyrinth_tui.model.packets import PacketRing
from labyrinth_tui.sources.bundle import Bundle
from labyrinth_tui.sources.replay import ReplaySource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.packet_list import PacketList
from labyrinth_tui.ui.widgets.stream_pane import StreamPane
from tests.fakes.article_bundle import write_article_bundle
from tests.fakes.packets import ack

ROUNDS = 4


def live_rings() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, PacketRing))


async def test_closed_streams_leave_nothing_behind(tmp_path: Path) -> None:
    root = write_article_bundle(tmp_path / "b", 400)
    specs = [s.spec for s in Bundle.load(root).streams][:3]
    assert len(specs) == 3
    app = make_app(ReplaySource(root, speed=0))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        gc.collect()
        rings_before = live_rings()
        for _ in range(ROUNDS):
            for spec in specs:
                await screen.open_stream(spec)
            await app.workers.wait_for_complete()
            await pilot.pause()
            panes = list(screen.query(StreamPane))
            lists = [weakref.ref(p.query_one(PacketList)) for p in panes]
            gone = [weakref.ref(p) for p in panes]
            assert len(panes) == 3 and all((ref() or PacketList()).row_count > 0 for ref in lists)
            for pane in panes:
                pane.query_one(PacketList).focus()
                await pilot.press("x")  # what a person does: the pane's own Close key
                await pilot.pause()
            del panes, pane
            assert not screen.query(StreamPane)
            await pilot.pause()
            gc.collect()
            assert [ref() for ref in lists] == [None] * 3, "a closed pane's packet list is still alive"
            assert [ref() for ref in gone] == [None] * 3
            assert live_rings() == rings_before


class _OneList(App[None]):
    def compose(self) -> ComposeResult:
        yield PacketList()


def live_strips() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, Strip))


async def test_rows_that_scrolled_away_are_not_kept_rendered() -> None:
    """A list left open on a slow stream: what it keeps rendered is bounded by its height, not its history.

    Every cached row carries Textual's caches of its copies (~3 KB); 1024 of them per list grew the app
    by 1 MB a minute at 6 packets/s until the cache was full.
    """
    app = _OneList()
    async with app.run_test(size=(100, 24)) as pilot:
        plist = app.query_one(PacketList)
        number = 0

        async def stream(flushes: int) -> None:
            nonlocal number
            for _ in range(flushes):
                plist.add(
                    tuple(ack(number := number + 1, per_second=5) for _ in range(10))
                )  # each row passes the view
                plist._flush()
                await pilot.pause()

        await stream(10)
        gc.collect()
        after_100 = live_strips()
        splits = Segment._split_cells.cache_info().currsize  # type: ignore[attr-defined]
        await stream(50)
        assert plist.row_count == 600
        gc.collect()
        grown = live_strips() - after_100
        assert grown <= 3 * plist.size.height, f"{grown} more strips alive after 500 more rows"
        # rows fit beside the scrollbar: none is cut there, so none lands in rich's cache of cut segments
        cut = Segment._split_cells.cache_info().currsize - splits  # type: ignore[attr-defined]
        assert cut < 10, f"{cut} rows cut by the compositor"
        # and the history is all there: the first row renders when scrolled back to
        plist.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        assert plist.render_line(0).text.split()[0] == "1"
