"""StreamPane: one live stream; a header (node · interface · filter · state · pkt/s · dropped), packets."""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Sparkline, Static

from labyrinth_tui.model.fit import Field, fit_fields
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.sources import StreamSpec, StreamState
from labyrinth_tui.ui.widgets.packet_list import PacketList

STATE_STYLE = {
    StreamState.STARTING: ("◌ starting", "yellow"),
    StreamState.CAPTURING: ("● capturing", "green"),
    StreamState.STOPPED: ("■ stopped", "dim"),
    StreamState.FAILED: ("✗ failed", "bold red"),
}
RATE_WINDOW = 30  # seconds of pkt/s history in the sparkline
RATE_CELLS = 12  # the sparkline's width (styles/main.tcss .stream-rate)


def pane_id(spec: StreamSpec) -> str:
    """A widget id for the stream, the same in every run: readable node/interface, then a digest of
    the whole spec (two filters on one interface never share an id)."""
    digest = hashlib.blake2b(spec.key.encode(), digest_size=6).hexdigest()
    readable = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{spec.node}-{spec.interface}")
    return f"stream-{readable}-{digest}"


class StreamPane(Vertical, can_focus_children=True):
    """A stream's header, its packet list and (on `/`) its display filter.

    The header follows events (a batch, a state change, pause, filter, clear), coalesced to one update
    per frame; the state is also a CSS class (`-starting`, `-capturing`, `-stopped`, `-failed`).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_pause", "Pause"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("c", "clear", "Clear"),
        Binding("x", "close", "Close"),
    ]

    @dataclass
    class CloseRequested(Message):
        pane: StreamPane

        @property
        def control(self) -> StreamPane:
            return self.pane

    state: reactive[StreamState] = reactive(StreamState.STARTING)
    reason: reactive[str] = reactive("")
    # packets the source never delivered: one flush carried more than the ring holds (the source counts)
    source_dropped: reactive[int] = reactive(0)
    # packets the node's kernel dropped before tcpdump saw them (tcpdump's own count): lost for good
    kernel_dropped: reactive[int] = reactive(0)

    def __init__(self, spec: StreamSpec, capacity: int = 100_000) -> None:
        super().__init__(id=pane_id(spec), classes="stream-pane")
        self.spec = spec
        self.lag = ""  # "behind by N packets / S s, all recorded" while the node's tshark is behind
        self.capacity = capacity
        self._header_pending = False
        # packets per second of the packets' own clock: live it is the wire rate, replayed it is the
        # recorded one, and a snapshot of it does not depend on when a timer fired
        self._rates: deque[float] = deque([0.0] * RATE_WINDOW, maxlen=RATE_WINDOW)
        self._second: int | None = None
        self._shown: tuple[object, ...] = ()  # what the header shows now (see _update_header)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="stream-header"):
            yield Static(self._title(), classes="stream-title")
            yield Sparkline(list(self._rates), classes="stream-rate")
            yield Static("", classes="stream-counts")
        yield Static("", classes="stream-reason")
        yield PacketList(self.capacity)
        yield Input(
            placeholder="display filter: terms that must appear; !term excludes", classes="stream-filter"
        )

    def on_mount(self) -> None:
        self.query_one(".stream-filter", Input).display = False
        self.watch(self.packets, "new_count", lambda _: self._header_changed(), init=False)
        self.watch(self.packets, "following", lambda _: self._header_changed(), init=False)
        self._update_header()

    def watch_state(self, old: StreamState, state: StreamState) -> None:
        self.remove_class(f"-{old.value}")
        self.add_class(f"-{state.value}")
        self._header_changed()

    def watch_reason(self) -> None:
        self._header_changed()

    def watch_source_dropped(self) -> None:
        self._header_changed()

    def watch_kernel_dropped(self) -> None:
        self._header_changed()

    @property
    def packets(self) -> PacketList:
        return self.query_one(PacketList)

    def add(self, packets: tuple[PacketSummary, ...], source_dropped: int = 0) -> None:
        """Take a batch; `source_dropped` is the source's running count of packets it could not ship."""
        self.packets.add(packets)
        self.source_dropped = max(self.source_dropped, source_dropped)
        for packet in packets:
            second = int(packet.ts)
            if self._second is None:
                self._second = second
            if second > self._second:
                self._rates.extend([0.0] * min(RATE_WINDOW, second - self._second))
                self._second = second
            if second == self._second:
                self._rates[-1] += 1
        self.query_one(Sparkline).data = list(self._rates)
        self._header_changed()

    def set_state(self, state: StreamState, reason: str = "") -> None:
        self.state = state
        self.reason = reason

    def set_kernel_dropped(self, packets: int) -> None:
        """tcpdump's running count of packets the kernel dropped for this stream (it only grows)."""
        self.kernel_dropped = max(self.kernel_dropped, packets)

    def set_lag(self, lag: str) -> None:
        self.lag = lag
        self._update_header()

    def _title(self) -> Text:
        label, style = STATE_STYLE[self.state]
        title = Text.assemble((label.split()[0] + " ", style), (self.spec.node, "bold"), " · ")
        title.append(self.spec.interface, style="bold cyan")
        if self.spec.capture_filter:
            title.append(f" · {self.spec.capture_filter}", style="italic")
        return title

    def _reason(self) -> Text:
        label, style = STATE_STYLE[self.state]
        text = Text(label.split(maxsplit=1)[1], style=style)
        if self.reason:
            text.append(f": {self.reason}")
        return text

    def _header_changed(self) -> None:
        """Many events in one frame (batches of several streams, a state change) make one update."""
        if not self._header_pending and self.is_mounted:
            self._header_pending = True
            self.call_after_refresh(self._update_header)

    def _update_header(self) -> None:
        self._header_pending = False
        if not self.is_mounted:
            return
        title = self._title()
        self.query_one(".stream-title", Static).update(title)
        reason = self.query_one(".stream-reason", Static)
        behind = self.state is StreamState.CAPTURING and bool(self.lag)
        # the state's words stay on screen while it matters: starting, failed, or why it stopped; and
        # a line of its own while the node's tshark is behind the recording (the counts line is full)
        reason.update(Text(self.lag, style="bold yellow") if behind else self._reason())
        reason.display = self.state is not StreamState.CAPTURING or behind
        self._fit_counts(title.cell_len + 2)

    def _count_fields(self) -> list[tuple[Field, str]]:
        """The header's counts, compact, ranked: packets seen, then what was lost, then the rest."""
        plist = self.packets
        fields = [(Field(f"{plist.ring.total} pkts", required=True), "")]
        if self.kernel_dropped:
            fields.append((Field(f"kernel dropped {self.kernel_dropped}", 1), "bold red"))
        if plist.ring.dropped:
            fields.append((Field(f"{plist.ring.dropped} dropped", 1), "bold red"))
        if self.source_dropped:
            fields.append((Field(f"{self.source_dropped} not delivered", 1), "bold red"))
        if plist.new_count:
            fields.append((Field(f"+{plist.new_count} new", 1), "bold yellow"))
        if plist.filter:
            fields.append((Field(f"filter: {plist.filter.text}", 3, min_width=12), "italic"))
        fields.insert(1, (Field(f"{self._rates[-1]:.0f} pkt/s", 2), ""))
        return fields

    def _fit_counts(self, title_cells: int) -> None:
        """Node and interface first: the sparkline goes when the header is short of room, then the counts
        shrink (model.fit's order) to what is left beside the title."""
        plist = self.packets
        # every 0.25 s on every pane: updating three Statics with the same text still relays out and
        # repaints the screen (13 % CPU with three quiet streams, bench/soak.py); only a change is drawn
        # (the drop counts too: tcpdump's can grow while no packet comes, and must never stay hidden)
        shown = (
            self.state, self.reason, self._rates[-1], plist.ring.total, plist.ring.dropped,
            plist.new_count, plist.filter.text, self.kernel_dropped, self.source_dropped,
        )  # fmt: skip
        if shown == self._shown:
            return
        self._shown = shown
        counts = Text(f"{self._rates[-1]:>7.0f} pkt/s  {plist.ring.total:>7} pkts")
        if self.kernel_dropped:
            counts.append(f"  kernel dropped {self.kernel_dropped}", style="bold red")
        if plist.ring.dropped:
            counts.append(f"  {plist.ring.dropped} dropped", style="bold red")
        if self.source_dropped:
            counts.append(f"  {self.source_dropped} not delivered", style="bold red")
        if plist.new_count:
            counts.append(f"  +{plist.new_count} new", style="bold yellow")
        if plist.filter:
            counts.append(f"  filter: {plist.filter.text}", style="italic")
        width = self.query_one(".stream-header").size.width
        sparkline = self.query_one(Sparkline)
        fits = width == 0 or title_cells + counts.cell_len + 2 + RATE_CELLS <= width
        sparkline.display = fits
        if not fits:
            fields = self._count_fields()
            texts = fit_fields([f for f, _ in fields], max(8, width - title_cells - 2))
            counts = Text("  ").join(
                Text(text, style=style) for (_, style), text in zip(fields, texts, strict=True) if text
            )
        self.query_one(".stream-counts", Static).update(counts)

    def on_resize(self) -> None:
        self._header_changed()

    @on(PacketList.Selected)
    def _selected(self, event: PacketList.Selected) -> None:
        event.stop()
        self.post_message(self.PacketChosen(self, event.packet))

    @dataclass
    class PacketChosen(Message):
        pane: StreamPane
        packet: PacketSummary

        @property
        def control(self) -> StreamPane:
            return self.pane

    def action_toggle_pause(self) -> None:
        plist = self.packets
        if plist.following:
            plist.pause()
        else:
            plist.action_follow()

    def action_clear(self) -> None:
        self.packets.clear()
        self._header_changed()

    def action_filter(self) -> None:
        field = self.query_one(".stream-filter", Input)
        field.display = True
        field.value = self.packets.filter.text
        field.focus()

    def key_escape(self) -> None:
        field = self.query_one(".stream-filter", Input)
        if field.display:
            field.display = False
            self.packets.focus()

    @on(Input.Submitted, ".stream-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.packets.set_filter(event.value)
        event.input.display = False
        self.packets.focus()
        self._header_changed()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # a viewer of `labyrinth serve` cannot close the presenter's capture
        return not (action == "close" and getattr(self.app, "follow", False))

    def action_close(self) -> None:
        self.post_message(self.CloseRequested(self))
