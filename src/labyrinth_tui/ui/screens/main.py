"""The main screen: provisioning progress, the node/pod/netns/veth tree and the live streams."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header

from labyrinth_tui.sources import ProgressEvent, Source, SourceEvent, TopologyEvent
from labyrinth_tui.ui.messages import SourceEventMessage
from labyrinth_tui.ui.widgets.provision_pane import ProvisionPane
from labyrinth_tui.ui.widgets.streams_area import StreamsArea
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("p", "toggle_provision", "Provisioning"),
        Binding("t", "focus_tree", "Tree"),
    ]

    def __init__(self, source: Source | None) -> None:
        super().__init__()
        self.source = source

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            yield TopologyTree(id="topology")
            with Vertical(id="right"):
                yield ProvisionPane(id="provision")
                yield StreamsArea(id="streams")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TopologyTree).focus()
        if self.source is not None:
            self.start_source()

    @work(group="source", exclusive=True, exit_on_error=False)
    async def start_source(self) -> None:
        assert self.source is not None
        await self.source.start(self._emit)

    def _emit(self, event: SourceEvent) -> None:
        # the source runs on this loop: posting a message hands the event to the handlers that own UI state
        self.post_message(SourceEventMessage(event))

    @on(SourceEventMessage)
    def on_source_event(self, message: SourceEventMessage) -> None:
        event = message.event
        if isinstance(event, ProgressEvent):
            self.query_one(ProvisionPane).update_step(event.step)
        elif isinstance(event, TopologyEvent):
            self.query_one(TopologyTree).show_topology(event.topology)

    def action_toggle_provision(self) -> None:
        self.query_one(ProvisionPane).toggle_class("-collapsed")

    def action_focus_tree(self) -> None:
        self.query_one(TopologyTree).focus()
