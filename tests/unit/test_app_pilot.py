"""The app as a user drives it with no source: regions, help, theme, quit."""

from __future__ import annotations

from textual.widgets import Footer, Header, Static

from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.help import HelpScreen
from labyrinth_tui.ui.widgets.provision_pane import ProvisionPane
from labyrinth_tui.ui.widgets.streams_area import StreamsArea
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree


async def test_main_screen_has_the_three_regions_and_help_and_quit() -> None:
    app = make_app(None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert screen.query_one(TopologyTree).border_title == "Topology"
        assert screen.query_one(ProvisionPane).border_title == "Provisioning"
        assert screen.query_one(StreamsArea).border_title == "Streams"
        screen.query_one(Header)
        screen.query_one(Footer)
        assert "No streams open" in str(screen.query_one("#streams-hint", Static).render())

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-bindings", Static).render())
        for key in ("?", "q", "p", "t"):
            assert f" {key} " in f" {text} "
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

        await pilot.press("p")
        assert app.screen.query_one(ProvisionPane).has_class("-collapsed")
        assert not app.screen.query_one(ProvisionPane).display

        before = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != before

        await pilot.press("q")
    assert app.return_code == 0
