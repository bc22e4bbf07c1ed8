"""The main screen: provisioning progress, the node/pod/netns/veth tree and the live streams."""

from __future__ import annotations

import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Tab, Tabs, Tree
from textual.worker import Worker, WorkerState

from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.model.text import inert
from labyrinth_tui.model.topology import Topology
from labyrinth_tui.sources import (
    PacketBatch,
    ProgressEvent,
    Source,
    SourceEvent,
    StreamDrops,
    StreamLag,
    StreamSpec,
    StreamState,
    StreamStatus,
    TopologyEvent,
)
from labyrinth_tui.sources.tour import tour_runner
from labyrinth_tui.ui.messages import SourceEventMessage
from labyrinth_tui.ui.screens.journey import JourneyScreen, TourScreen
from labyrinth_tui.ui.screens.journey_target import JourneyTargetScreen
from labyrinth_tui.ui.screens.packet_detail import PacketDetailScreen
from labyrinth_tui.ui.widgets.details_panel import DetailsPanel
from labyrinth_tui.ui.widgets.fitted_footer import FittedFooter
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
        Binding("v", "next_view", "View"),
        Binding("tab", "focus_next", "Next pane", show=False),
    ]
    VIEWS = ("topology", "streams", "details")  # the panes one at a time, on a narrow terminal

    def __init__(self, source: Source | None) -> None:
        super().__init__()
        self.source = source
        self._closing_streams: dict[StreamSpec, Worker[None]] = {}  # streams whose close still runs

    def compose(self) -> ComposeResult:
        yield Header()
        yield Tabs(*(Tab(view.title(), id=f"view-{view}") for view in self.VIEWS), id="view-tabs")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield TopologyTree(id="topology")
                yield DetailsPanel(id="details")
            with Vertical(id="right"):
                yield ProvisionPane(id="provision")
                yield StreamsArea(id="streams")
        yield FittedFooter()

    def on_mount(self) -> None:
        self.add_class("-view-topology")
        self.query_one(TopologyTree).focus()
        if self.source is not None:
            self.start_source()

    @property
    def narrow(self) -> bool:
        return self.has_class("-narrow")  # set by the app's HORIZONTAL_BREAKPOINTS

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # switching views means something only when the panes are shown one at a time
        return self.narrow if action == "next_view" else True

    def on_resize(self) -> None:
        self.refresh_bindings()  # `v` shows in the footer only while narrow

    def show_view(self, view: str) -> None:
        """Narrow: show the topology, the streams or the details (wide, all are shown anyway)."""
        self.query_one("#view-tabs", Tabs).active = f"view-{view}"
        self._apply_view(view)

    @on(Tabs.TabActivated, "#view-tabs")
    def _view_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        self._apply_view((event.tab.id or "view-topology").removeprefix("view-"))

    def _apply_view(self, view: str) -> None:
        """The class that styles/main.tcss shows the pane by, then focus into it once it is shown."""
        for name in self.VIEWS:
            self.set_class(name == view, f"-view-{name}")
        if view == "topology":
            self.call_after_refresh(self.query_one(TopologyTree).focus)
        elif view == "streams":
            area = self.query_one(StreamsArea)
            pane = next((p for p in area.panes if p.has_class("-active")), None)
            if pane is not None:
                self.call_after_refresh(pane.packets.focus)

    def action_next_view(self) -> None:
        active = (self.query_one("#view-tabs", Tabs).active or "view-topology").removeprefix("view-")
        self.show_view(self.VIEWS[(self.VIEWS.index(active) + 1) % len(self.VIEWS)])

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
                pane.add(event.packets, event.dropped)
        elif isinstance(event, StreamStatus):
            pane = self.query_one(StreamsArea).pane_for_key(event.spec.key)
            if pane is not None:
                pane.set_state(event.state, event.reason)
        elif isinstance(event, StreamLag):
            pane = self.query_one(StreamsArea).pane_for_key(event.spec.key)
            if pane is not None:
                pane.set_lag(event.text)
        elif isinstance(event, StreamDrops):
            pane = self.query_one(StreamsArea).pane_for_key(event.spec.key)
            if pane is not None:
                pane.set_kernel_dropped(event.packets)
        elif isinstance(event, ProgressEvent):
            self.query_one(ProvisionPane).update_step(event.step)
        elif isinstance(event, TopologyEvent):
            self.query_one(TopologyTree).show_topology(event.topology)
            self.read_datapath()

    @work(group="datapath", exclusive=True, exit_on_error=False)
    async def read_datapath(self) -> None:
        """The nodes' BPF programs and counters as the source has them now, into the details panel."""
        if self.source is None:
            return
        try:
            found = await self.source.datapath()
        except OSError:
            return  # a lab going down under us: the panel keeps what it showed
        self.query_one(DetailsPanel).show_datapath(found)

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted[TreeRef]) -> None:
        self.query_one(DetailsPanel).show(event.node.data)
        self.read_datapath()  # the counters move with the traffic: read them again for the line shown
        note_selection = getattr(self.source, "note_selection", None)  # `labyrinth serve`'s presenter
        if note_selection is not None:
            note_selection(str(event.node.label))

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
        if self.narrow:
            self.show_view("streams")  # after open: the new pane is the active one it focuses
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
            self._capture(self.source, spec),
            name=f"stream:{spec.key}",
            group="streams",
            exit_on_error=False,
        )

    async def _capture(self, source: Source, spec: StreamSpec) -> None:
        """The stream's capture; a close of the same spec still under way ends first (one per spec)."""
        closing = self._closing_streams.get(spec)
        if closing is not None:
            await closing.wait()
        await source.open_stream(spec, self.emit)

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
        """The pane goes at once; stopping tshark, fetching the recording and cleaning up the node run
        in a worker, off this handler (they take seconds on a busy node)."""
        spec = event.pane.spec
        await self.query_one(StreamsArea).close(event.pane)
        self.query_one(TopologyTree).focus()
        if self.source is not None:
            self._closing_streams[spec] = self._close_stream(self.source, spec)

    @work(group="close", exit_on_error=False)
    async def _close_stream(self, source: Source, spec: StreamSpec) -> None:
        try:
            await source.close_stream(spec)
        finally:
            self._closing_streams.pop(spec, None)

    def action_journey(self) -> None:
        if self.source is None:
            self.notify("no source: the journey needs the lab or a recording", severity="warning")
            return
        tree = self.query_one(TopologyTree)
        line = tree.cursor_node.data if tree.cursor_node is not None else None
        topology = tree.root.data.topology if tree.root.data is not None else None
        if line is not None and line.pod is not None and topology is not None:
            # on a pod: ask where its packet goes (escape: nothing runs); elsewhere the article's pair
            self.app.push_screen(JourneyTargetScreen(topology, line.pod.qualified_name), self._follow)
            return
        self._follow(JourneyRequest())

    def _follow(self, request: JourneyRequest | None) -> None:
        if request is None:  # the target modal was cancelled
            return
        what = "the article's packet" if request == JourneyRequest() else request.text
        self.notify(f"following {what}: captures on every hop, then the traffic…", title="Journey")
        self.run_journey(request)

    @work(group="journey", exclusive=True, exit_on_error=False)
    async def run_journey(self, request: JourneyRequest | None = None) -> None:
        assert self.source is not None
        try:
            report = await self.source.journey(self.emit, request)
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
        self.app.push_screen(TourScreen(run=tour_runner(lambda: source.journey(self.emit))))

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
        if self.narrow:
            self.show_view("topology")
        self.query_one(TopologyTree).focus()

    def action_toggle_layout(self) -> None:
        self.query_one(StreamsArea).toggle_layout()
