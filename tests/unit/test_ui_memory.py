"""Closing a stream frees it: panes and packet lists of closed streams are collected, round after round."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from labyrinth_tui.model.packets import PacketRing
from labyrinth_tui.sources.bundle import Bundle
from labyrinth_tui.sources.replay import ReplaySource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.packet_list import PacketList
from labyrinth_tui.ui.widgets.stream_pane import StreamPane
from tests.fakes.article_bundle import write_article_bundle

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
