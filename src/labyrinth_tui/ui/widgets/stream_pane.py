"""StreamPane: one live stream; a header (node · interface · filter · state · pkt/s · dropped), packets."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Sparkline, Static

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


def pane_id(spec: StreamSpec) -> str:
    raw = f"{spec.node}-{spec.interface}-{abs(hash(spec.capture_filter)) % 10_000}"
    return "stream-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in raw)


class StreamPane(Vertical, can_focus_children=True):
    """A stream's header, its packet list and (on `/`) its display filter."""

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

    def __init__(self, spec: StreamSpec, capacity: int = 100_000) -> None:
        super().__init__(id=pane_id(spec), classes="stream-pane")
        self.spec = spec
        self.state = StreamState.STARTING
        self.reason = ""
        self.capacity = capacity
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
        self.set_interval(0.25, self._update_header)
        # "+N new" and paused/following show at once, not at the next tick
        self.watch(self.packets, "new_count", lambda _: self._update_header(), init=False)
        self.watch(self.packets, "following", lambda _: self._update_header(), init=False)
        self._update_header()

    @property
    def packets(self) -> PacketList:
        return self.query_one(PacketList)

    def add(self, packets: tuple[PacketSummary, ...]) -> None:
        self.packets.add(packets)
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

    def set_state(self, state: StreamState, reason: str = "") -> None:
        self.state = state
        self.reason = reason
        for s in StreamState:
            self.set_class(s is state, f"-{s.value}")
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

    def _update_header(self) -> None:
        if not self.is_mounted:
            return
        plist = self.packets
        # every 0.25 s on every pane: updating three Statics with the same text still relays out and
        # repaints the screen (13 % CPU with three quiet streams, bench/soak.py); only a change is drawn
        shown = (
            self.state, self.reason, self._rates[-1], plist.ring.total, plist.ring.dropped,
            plist.new_count, plist.filter.text,
        )  # fmt: skip
        if shown == self._shown:
            return
        self._shown = shown
        counts = Text(f"{self._rates[-1]:>7.0f} pkt/s  {plist.ring.total:>7} pkts")
        if plist.ring.dropped:
            counts.append(f"  {plist.ring.dropped} dropped", style="bold red")
        if plist.new_count:
            counts.append(f"  +{plist.new_count} new", style="bold yellow")
        if plist.filter:
            counts.append(f"  filter: {plist.filter.text}", style="italic")
        self.query_one(".stream-title", Static).update(self._title())
        reason = self.query_one(".stream-reason", Static)
        reason.update(self._reason())
        # the state's words stay on screen while it matters: starting, failed, or why it stopped
        reason.display = self.state is not StreamState.CAPTURING
        self.query_one(".stream-counts", Static).update(counts)

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
        self._update_header()

    def action_clear(self) -> None:
        self.packets.clear()
        self._update_header()

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
        self._update_header()

    def action_close(self) -> None:
        self.post_message(self.CloseRequested(self))
