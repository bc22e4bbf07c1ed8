"""What Textual's idioms give the user: colours that follow the theme, a complete help, stable pane ids."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from labyrinth_tui.sources import PacketBatch, StreamSpec
from labyrinth_tui.sources.replay import ReplaySource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.help import HelpScreen
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.packet_list import PacketList
from labyrinth_tui.ui.widgets.stream_pane import StreamPane, pane_id
from tests.fakes.article import CLIENT_VETH
from tests.fakes.article_bundle import write_article_bundle
from tests.fakes.waiting import plain, settle


async def _stream(app: MainScreen, spec: StreamSpec) -> StreamPane:
    await app.open_stream(spec)
    pane = app.query_one(StreamPane)
    pane.packets.focus()
    return pane


async def test_a_rendered_row_takes_the_new_themes_colour_after_ctrl_t(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 30), speed=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, MainScreen)
        pane = await _stream(screen, StreamSpec("node-1", CLIENT_VETH))
        plist = pane.query_one(PacketList)
        await app.workers.wait_for_complete()
        await settle(pilot, lambda: plist.row_count == 30, "30 rows")
        rows = range(plist.size.height)

        def colours() -> list[object]:
            strips = [plist.render_line(y) for y in rows]
            return [next(iter(strip)).style.color for strip in strips if strip.text.strip()]  # type: ignore[union-attr]

        before = colours()  # rendered, and so cached
        theme = app.theme
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme != theme
        after = colours()
        assert after != before  # the row colours moved with the theme…
        expected = [
            plist.get_component_rich_style(plist._kind(p)).color
            for p in (plist.packet_at(int(plist.scroll_y) + y) for y in rows)
            if p is not None
        ]
        assert after == expected  # …to exactly the new theme's colour for each kind of packet


async def test_help_lists_every_key_of_the_focused_stream(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 5), speed=0))
    async with app.run_test(size=(120, 60)) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await _stream(screen, StreamSpec("node-1", CLIENT_VETH))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = plain(app.screen.query_one("#help-bindings", Static).render())
        listed = {line.split(maxsplit=1)[0]: line for line in text.splitlines() if line.strip()}
        for key, what in [
            ("space", "Pause"),
            ("/", "Filter"),
            ("c", "Clear"),
            ("x", "Close"),
            ("⏎", "Packet detail"),  # enter, as Textual shows it
            ("e", "Export pcapng"),
            ("g", "Grid/Tabs"),
            ("?", "Help"),
        ]:
            assert key in listed and what in listed[key], f"{key} ({what}) missing from help:\n{text}"


def test_pane_ids_are_stable_and_two_filters_never_share_one() -> None:
    one = StreamSpec("node-1", "ens4", "udp port 9")
    assert pane_id(one) == "stream-node-1-ens4-" + pane_id(one).rsplit("-", 1)[1]
    assert pane_id(one) == pane_id(StreamSpec("node-1", "ens4", "udp port 9"))
    filters = [f"port {n}" for n in range(20_000)]
    ids = {pane_id(StreamSpec("node-1", "ens4", f)) for f in filters}
    assert len(ids) == len(filters)


async def test_packets_the_source_could_not_ship_show_in_the_stream_header(tmp_path: Path) -> None:
    app = make_app(ReplaySource(write_article_bundle(tmp_path / "b", 5), speed=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, MainScreen)
        pane = await _stream(screen, StreamSpec("node-1", CLIENT_VETH))
        await app.workers.wait_for_complete()
        packets = tuple(pane.packets.ring)
        counts = pane.query_one(".stream-counts", Static)
        assert "not delivered" not in plain(counts.render())
        # what CaptureStreams sends after a flush that carried more than the ring holds
        screen.emit(PacketBatch(pane.spec, packets, dropped=1234))
        await settle(pilot, lambda: "1234 not delivered" in plain(counts.render()), "the header to say it")
