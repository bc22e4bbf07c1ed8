"""The main screen: provisioning progress, the node/pod/netns/veth tree and the live streams."""

from __future__ import annotations

import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Tree
from textual.worker import Worker, WorkerState

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.tour import TourStep, tour_steps
from labyrinth_tui.model.text import inert
from labyrinth_tui.model.topology import Topology
from labyrinth_tui.sources import (
    PacketBatch,
    ProgressEvent,
    Source,
    SourceEvent,
    StreamSpec,
    StreamState,
    StreamStatus,
    TopologyEvent,
)
from labyrinth_tui.ui.messages import SourceEventMessage
from labyrinth_tui.ui.screens.journey import JourneyScreen, TourScreen
from labyrinth_tui.ui.screens.packet_detail import PacketDetailScreen
from labyrinth_tui.ui.widgets.details_panel import DetailsPanel
from labyrinth_tui.ui.widgets.provision_pane import ProvisionPane
from labyrinth_tui.ui.widgets.stream_pane import StreamPane
from labyrinth_tui.ui.widgets.streams_area import StreamsArea
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree, TreeRef


def export_name(spec: StreamSpec) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / f"labyrinth-{spec.node}-{spec.interface}-{stamp}.pcapng"


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("p", "toggle_provision", "Provisioning"),
        Binding("t", "focus_tree", "Tree"),
        Binding("g", "toggle_layout", "Grid/Tabs"),
        Binding("e", "export", "Export pcapng"),
        Binding("j", "journey", "Journey"),
        Binding("u", "tour", "Tour"),
        Binding("tab", "focus_next", "Next pane", show=False),
    ]

    def __init__(self, source: Source | None) -> None:
        super().__init__()
        self.source = source
        self.topology_ready = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield TopologyTree(id="topology")
                yield DetailsPanel(id="details")
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
        await self.source.start(self.emit)

    def emit(self, event: SourceEvent) -> None:
        # the source runs on this loop: posting a message hands the event to the handlers that own UI state
        self.post_message(SourceEventMessage(event))

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        error = inert(str(event.worker.error))  # an exception's text may quote a node or a file
        name = event.worker.name
        if name.startswith("stream:"):
            pane = self.query_one(StreamsArea).pane_for_key(name.removeprefix("stream:"))
            if pane is not None:
                pane.set_state(StreamState.FAILED, error)
            return
        self.notify(error, title="The source failed", severity="error", timeout=30, markup=False)

    @on(SourceEventMessage)
    def on_source_event(self, message: SourceEventMessage) -> None:
        event = message.event
        if isinstance(event, PacketBatch):
            pane = self.query_one(StreamsArea).pane_for_key(event.spec.key)
            if pane is not None:
                pane.add(event.packets)
        elif isinstance(event, StreamStatus):
            pane = self.query_one(StreamsArea).pane_for_key(event.spec.key)
            if pane is not None:
                pane.set_state(event.state, event.reason)
        elif isinstance(event, ProgressEvent):
            self.query_one(ProvisionPane).update_step(event.step)
        elif isinstance(event, TopologyEvent):
            self.topology_ready = True
            self.query_one(TopologyTree).show_topology(event.topology)

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted[TreeRef]) -> None:
        self.query_one(DetailsPanel).show(event.node.data)

    @on(Tree.NodeSelected)
    async def _selected(self, event: Tree.NodeSelected[TreeRef]) -> None:
        ref = event.node.data
        if ref is None or ref.kind != "interface" or ref.node is None or ref.interface is None:
            return
        await self.open_stream(StreamSpec(ref.node.name, ref.interface.name))

    async def open_stream(self, spec: StreamSpec) -> None:
        """Open a pane for spec and start its capture (or show it again if it is open)."""
        area = self.query_one(StreamsArea)
        already = area.pane(spec) is not None
        await area.open(spec)
        if already:
            return
        if self.source is None:
            pane = area.pane(spec)
            assert pane is not None
            pane.set_state(
                StreamState.FAILED, "no source: start with `labyrinth` (the lab) or `labyrinth replay`"
            )
            return
        self.run_worker(
            self.source.open_stream(spec, self.emit),
            name=f"stream:{spec.key}",
            group="streams",
            exit_on_error=False,
        )

    @on(StreamPane.PacketChosen)
    def _packet_chosen(self, event: StreamPane.PacketChosen) -> None:
        self.app.push_screen(PacketDetailScreen(self.source, event.pane.spec, event.packet))

    def focused_pane(self) -> StreamPane | None:
        node = self.focused
        while node is not None and not isinstance(node, StreamPane):
            node = node.parent  # type: ignore[assignment]
        if isinstance(node, StreamPane):
            return node
        panes = self.query_one(StreamsArea).panes
        return panes[0] if len(panes) == 1 else None

    def action_export(self) -> None:
        pane = self.focused_pane()
        if pane is None:
            self.notify("Focus a stream first (tab), then press e.", severity="warning")
            return
        if self.source is None:
            self.notify("no source: nothing is recorded", severity="warning")
            return
        if pane.state is StreamState.CAPTURING:
            self.notify(f"fetching {pane.spec.key}'s packets so far from {pane.spec.node}…")
        self._export(self.source, pane.spec, export_name(pane.spec))

    @work(group="export", exit_on_error=False)
    async def _export(self, source: Source, spec: StreamSpec, target: Path) -> None:
        """Off the key handler: fetching a live stream from its node can take a while."""
        try:
            note = await source.save_pcapng(spec, target)
        except Exception as exc:  # the node's or the disk's words, shown; the stream goes on
            self.notify(f"could not save {spec.key}: {getattr(exc, 'reason', exc)}", severity="error")
            return
        if note is None:
            self.notify(f"{spec.key} is not recorded as pcapng", severity="warning")
            return
        said = f"saved {target} (open it in Wireshark or `tshark -r`)" + (f"; {note}" if note else "")
        self.notify(said, title="Exported", severity="warning" if note else "information")

    @on(StreamPane.CloseRequested)
    async def _close(self, event: StreamPane.CloseRequested) -> None:
        if self.source is not None:
            await self.source.close_stream(event.pane.spec)
        await self.query_one(StreamsArea).close(event.pane)
        self.query_one(TopologyTree).focus()

    def action_journey(self) -> None:
        if self.source is None:
            self.notify("no source: the journey needs the lab or a recording", severity="warning")
            return
        self.notify("following the article's packet: captures on every hop, then nc…", title="Journey")
        self.run_journey()

    @work(group="journey", exclusive=True, exit_on_error=False)
    async def run_journey(self) -> None:
        assert self.source is not None
        try:
            report = await self.source.journey(self.emit)
        except Exception as exc:  # shown to the user with its reason; the app goes on
            self.notify(str(exc), title="The journey could not run", severity="error", timeout=20)
            return
        await self.app.push_screen(JourneyScreen(report))

    def action_tour(self) -> None:
        """The article as a checklist: each step's ✓ or ✗ with what was actually seen."""
        if self.source is None:
            self.notify("no source: the tour needs the lab or a recording", severity="warning")
            return
        source = self.source

        async def run() -> tuple[JourneyReport | None, tuple[TourStep, ...]]:
            try:
                report = await source.journey(self.emit)
            except Exception as exc:  # one ✗ step saying why the run could not be made
                return None, (TourStep("the article's traffic, captured on every hop", False, str(exc)),)
            return report, tour_steps(report)

        self.app.push_screen(TourScreen(run=run))

    def action_lab_up(self) -> None:
        """Bring the source up again (the lab's `up` is idempotent) and rediscover the tree."""
        if self.source is not None:
            self.start_source()

    @work(group="lab", exclusive=True, exit_on_error=False)
    async def action_lab_down(self) -> None:
        down = getattr(self.source, "down", None)
        if down is None:
            self.notify("this source has no lab to take down", severity="warning")
            return
        for pane in self.query_one(StreamsArea).panes:
            await self.query_one(StreamsArea).close(pane)
        await down()
        self.query_one(TopologyTree).show_topology(Topology("lab is down: ctrl+p → Lab up"))
        self.notify("the lab is down: nothing of it is left on this machine", title="Lab")

    @work(group="lab", exclusive=True, exit_on_error=False)
    async def action_record(self) -> None:
        """Record the article's journey (lab only) into ./labyrinth-recording-<time>/ for replay."""
        from labyrinth_tui.sources.lab import LabSource
        from labyrinth_tui.sources.record import record_journey

        if not isinstance(self.source, LabSource):
            self.notify("recording runs the article's traffic in the lab", severity="warning")
            return
        out = Path.cwd() / f"labyrinth-recording-{time.strftime('%Y%m%d-%H%M%S')}"
        self.notify(f"recording the journey into {out}…", title="Record")
        try:
            await record_journey(self.source, out)
        except Exception as exc:  # said to the user; the app goes on
            self.notify(str(exc), title="Recording failed", severity="error", timeout=20)
            return
        self.notify(f"play it with: labyrinth replay {out}", title="Recorded")

    def action_toggle_provision(self) -> None:
        self.query_one(ProvisionPane).toggle_class("-collapsed")

    def action_focus_tree(self) -> None:
        self.query_one(TopologyTree).focus()

    def action_toggle_layout(self) -> None:
        self.query_one(StreamsArea).toggle_layout()
