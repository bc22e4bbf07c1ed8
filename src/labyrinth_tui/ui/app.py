"""LabyrinthApp and make_app(source): the one way the CLI and the tests build the app."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from labyrinth_tui import __version__
from labyrinth_tui.sources import Source
from labyrinth_tui.sources.follow import FollowSource
from labyrinth_tui.sources.follow_publish import PublishingSource
from labyrinth_tui.ui.commands import LabyrinthCommands
from labyrinth_tui.ui.gc_policy import keep_gc_pauses_short
from labyrinth_tui.ui.screens.follow import FollowScreen, PresentingScreen
from labyrinth_tui.ui.screens.help import HelpScreen
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.styles import EVIDENCE_BESIDE, NARROW_BELOW, stylesheets


class LabyrinthApp(App[None]):
    TITLE = "labyrinth"
    SUB_TITLE = f"a packet's journey through Kubernetes · v{__version__}"
    CSS_PATH = stylesheets()  # type: ignore[assignment]
    COMMANDS = App.COMMANDS | {LabyrinthCommands}
    # every screen gets `-narrow` below NARROW_BELOW columns (a projector, a laptop with a big font):
    # styles/*.tcss collapse panes to one at a time and stack the journey's hop rows there
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_BELOW, "-wide"), (EVIDENCE_BESIDE, "-roomy")]
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+t", "toggle_dark", "Theme", show=False),
    ]

    def __init__(self, source: Source | None = None, follow: bool = False) -> None:
        super().__init__()
        self.source = source
        self.follow = follow  # a viewer of `labyrinth serve`: nothing that acts on the cluster or the disk
        self._source_closed = False

    def on_mount(self) -> None:
        keep_gc_pauses_short(self)
        if self.follow and isinstance(self.source, FollowSource):
            self.push_screen(FollowScreen(self.source))
            return
        if isinstance(self.source, PublishingSource):  # the presenter of `labyrinth serve`
            self.push_screen(PresentingScreen(self.source))
            return
        self.push_screen(MainScreen(self.source))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if not (self.follow and command.title == "Screenshot"):  # it writes to the server's disk
                yield command

    async def action_quit(self) -> None:
        """Stop every capture (nothing left running on the nodes), then leave."""
        if self.source is not None and not self._source_closed:
            self.notify("stopping captures…", timeout=2)
        await self._close_source()
        self.exit()

    async def on_unmount(self) -> None:
        # the app also ends without `q` (app.exit() from a screen, a viewer's terminal gone): the source
        # still stops its captures and removes its files (an attached cluster's keys among them)
        await self._close_source()

    async def _close_source(self) -> None:
        if self.source is None or self._source_closed:
            return
        self._source_closed = True
        try:
            await self.source.close()
        except Exception as exc:  # quitting must not fail; say what could not be stopped
            self.log.error(f"closing the source: {exc}")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"


def make_app(source: Source | None = None, follow: bool = False) -> LabyrinthApp:
    """The app over `source`; with no source the panes stay empty and say how to get one. `follow`:
    the audience's app of `labyrinth serve` over a FollowSource."""
    return LabyrinthApp(source, follow)
