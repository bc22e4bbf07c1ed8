"""FollowScreen: the main screen in follow mode; what the presenter shows, nothing acting on the cluster."""

from __future__ import annotations

from textual import on, work
from textual.message import Message

from labyrinth_tui.sources import (
    PacketBatch,
    ProgressEvent,
    SourceEvent,
    StreamDrops,
    StreamLag,
    StreamSpec,
    StreamStatus,
    TopologyEvent,
)
from labyrinth_tui.sources.follow import FollowSource
from labyrinth_tui.sources.follow_publish import PublishingSource
from labyrinth_tui.sources.follow_wire import (
    Dropped,
    FollowEvent,
    JourneyShown,
    JourneyStarted,
    Notice,
    Selection,
    StreamClosed,
    StreamOpened,
    TourShown,
)
from labyrinth_tui.ui.messages import SourceEventMessage
from labyrinth_tui.ui.screens.journey import JourneyScreen, TourScreen
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.streams_area import StreamsArea

# what a viewer may not do: each acts on the cluster, the node or the server's disk
PRESENTER_ONLY = frozenset({"journey", "tour", "export", "lab_up", "lab_down", "record"})


class FollowMessage(Message):
    def __init__(self, event: FollowEvent) -> None:
        super().__init__()
        self.event = event


class FollowScreen(MainScreen):
    """Streams open and close when the presenter's do, the journey appears when theirs is stitched,
    their tree selection is named in the header. Scrolling, filters, layout, dissection stay local."""

    def __init__(self, source: FollowSource) -> None:
        super().__init__(source)
        self.follow_source = source
        self.presenter_selection = ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return False if action in PRESENTER_ONLY else super().check_action(action, parameters)

    def on_mount(self) -> None:
        super().on_mount()
        self.sub_title = "following the presenter"

    @work(group="source", exclusive=True, exit_on_error=False)
    async def start_source(self) -> None:
        await self.follow_source.follow(self.deliver)

    def deliver(self, event: SourceEvent | FollowEvent) -> None:
        # one queue for both kinds, so a stream's pane is open before its first packets arrive
        if isinstance(
            event, PacketBatch | StreamStatus | StreamLag | StreamDrops | ProgressEvent | TopologyEvent
        ):
            self.post_message(SourceEventMessage(event))
        else:
            self.post_message(FollowMessage(event))

    @on(FollowMessage)
    async def _followed(self, message: FollowMessage) -> None:
        event = message.event
        area = self.query_one(StreamsArea)
        if isinstance(event, StreamOpened):
            await area.open(event.spec)
        elif isinstance(event, StreamClosed):
            pane = area.pane(event.spec)
            if pane is not None:
                await area.close(pane)
        elif isinstance(event, JourneyStarted):
            self.notify("the presenter is following the article's packet…", title="Journey")
        elif isinstance(event, JourneyShown):
            await self._show_instead(JourneyScreen(event.report))
        elif isinstance(event, TourShown):
            await self._show_instead(TourScreen(event.steps, event.report))
        elif isinstance(event, Selection):
            self.presenter_selection = event.label
            self.sub_title = f"following the presenter · on {event.label}"
            self.app.sub_title = self.sub_title
        elif isinstance(event, Dropped):
            self.notify(
                f"{event.count} packets of {event.spec.key} not shown: your link is slower than the stream",
                severity="warning",
            )
        elif isinstance(event, Notice):
            self.notify(event.text, title="Presenter")

    async def _show_instead(self, screen: JourneyScreen | TourScreen) -> None:
        """The presenter's latest journey or tour replaces the one shown before (never a pile of them)."""
        if isinstance(self.app.screen, JourneyScreen | TourScreen):
            self.app.pop_screen()
        await self.app.push_screen(screen)

    async def open_stream(self, spec: StreamSpec) -> None:
        self.notify("follow mode: the presenter opens the captures", severity="warning")


class PresentingScreen(MainScreen):
    """The presenter's main screen under `labyrinth serve`: MainScreen, but the tour (`u`) runs through
    PublishingSource.tour, so the room gets it as a tour rather than the bare journey underneath."""

    def __init__(self, source: PublishingSource) -> None:
        super().__init__(source)
        self.publishing = source

    def action_tour(self) -> None:
        source = self.publishing
        self.app.push_screen(TourScreen(run=lambda: source.tour(self.emit)))
