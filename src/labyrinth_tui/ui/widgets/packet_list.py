"""PacketList: a stream's packets as a virtual list; renders only visible rows, follows the tail."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from labyrinth_tui.model.packets import PacketRing, PacketSummary

FLUSH_SECONDS = 0.05  # the UI takes new packets at most every 50 ms, in one go
# rendered rows kept: a few screens' worth (CACHE_SCREENS × the list's height, at least CACHE_MIN_ROWS),
# so repaints and scrolling back and forth do not re-render. Not more: a cached Strip carries Textual's
# own caches of its cropped, divided and filtered copies, ~3 KB a row in all. With 1024 rows per list
# and rows cut under the scrollbar (render_line) the app grew 1.05 MB a minute at 6 packets/s with rows
# that had scrolled away (bench/soak.py, low phase); the cache alone was half of it.
CACHE_SCREENS = 3
CACHE_MIN_ROWS = 64


# a row's columns and the cells each takes; the narrower the list, the more of them give way (DROP_ORDER)
# so that the addresses and the info stay readable: at 80 columns a row keeps number, addresses,
# protocol and info
COLUMN_WIDTH = {"number": 7, "time": 11, "addresses": 34, "protocol": 7, "length": 6}
ALL_COLUMNS = frozenset(COLUMN_WIDTH)
DROP_ORDER = ("length", "time", "number", "protocol")
# the info's own cells, at least: 18 is what rows showed beside a scrollbar when they were drawn 2 cells
# too wide (its last 2 under it); counted beside the scrollbar now, 20 had dropped the number at 120
# columns (66 cells), and the number is what ties a row to its dissection
MIN_INFO = 18


def columns_for(width: int) -> frozenset[str]:
    """The columns a list `width` cells wide shows: all of them, or fewer, leaving MIN_INFO for the info."""
    columns = set(ALL_COLUMNS)
    for column in DROP_ORDER:
        if width - sum(COLUMN_WIDTH[c] for c in columns) >= MIN_INFO:
            break
        columns.discard(column)
    return frozenset(columns)


def row_text(packet: PacketSummary, t0: float, columns: frozenset[str] = ALL_COLUMNS) -> str:
    """One line per packet, like tshark's summary; encapsulated packets say how they travelled."""
    cells = []
    if "number" in columns:
        cells.append(f"{packet.number:>6} ")
    if "time" in columns:
        cells.append(f"{packet.ts - t0:>10.6f} ")
    cells.append(f"{packet.src:>15} → {packet.dst:<15} ")
    if "protocol" in columns:
        cells.append(f"{packet.protocol:<6} ")
    if "length" in columns:
        cells.append(f"{packet.length:>5} ")
    text = "".join(cells) + packet.info
    if packet.vni is not None:
        text += f"  ⛓ {packet.outer_src}→{packet.outer_dst} vni {packet.vni}"
    return text


class DisplayFilter:
    """Space-separated terms, all of which must appear in a row (case-insensitive); `!term` excludes."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        terms = self.text.lower().split()
        self.include = [t for t in terms if not t.startswith("!")]
        self.exclude = [t[1:] for t in terms if t.startswith("!") and len(t) > 1]

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def matches(self, row: str) -> bool:
        low = row.lower()
        return all(t in low for t in self.include) and not any(t in low for t in self.exclude)


class PacketList(ScrollView, can_focus=True):
    """The packets of one stream. New packets arrive through `add`; the screen refreshes every 50 ms."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "packet-list--cursor",
        "packet-list--dns",
        "packet-list--tcp",
        "packet-list--udp",
        "packet-list--other",
        "packet-list--vxlan",
    }
    DEFAULT_CSS = """
    PacketList { height: 1fr; overflow-x: hidden; scrollbar-gutter: stable; }
    PacketList > .packet-list--cursor { background: $accent 40%; }
    PacketList:focus > .packet-list--cursor { background: $accent; color: $text; }
    PacketList > .packet-list--dns { color: $warning; }
    PacketList > .packet-list--tcp { color: $text; }
    PacketList > .packet-list--udp { color: $secondary; }
    PacketList > .packet-list--other { color: $text-muted; }
    PacketList > .packet-list--vxlan { color: $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "top", "Top", show=False),
        Binding("end", "follow", "Follow", show=False),
        Binding("enter", "select", "Packet detail"),
    ]

    following: reactive[bool] = reactive(True)
    new_count: reactive[int] = reactive(0)

    @dataclass
    class Selected(Message):
        """The user chose a packet (enter)."""

        packet_list: PacketList
        packet: PacketSummary

        @property
        def control(self) -> PacketList:
            return self.packet_list

    def __init__(self, capacity: int = 100_000, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ring = PacketRing(capacity)
        self.filter = DisplayFilter("")
        self.cursor = -1  # a row of the view; -1 means "the newest"
        self._rows: list[int] | None = None  # absolute packet numbers matching the filter; None = all
        self._t0: float | None = None
        self._dirty = False
        self._seen_dropped = 0
        self._cache: LRUCache[int, Strip] = LRUCache(CACHE_MIN_ROWS)
        self._cache_width = 0
        self._cache_height = 0
        self._columns = ALL_COLUMNS

    def on_mount(self) -> None:
        self.set_interval(FLUSH_SECONDS, self._flush)

    def notify_style_update(self) -> None:
        """A theme or CSS change: rows rendered with the old colours must be rendered again."""
        super().notify_style_update()
        self._cache.clear()

    # ---- data in
    def add(self, packets: tuple[PacketSummary, ...] | list[PacketSummary]) -> None:
        """Take packets now; they reach the screen at the next flush. Cheap: no rendering here."""
        if not packets:
            return
        if self._t0 is None:
            self._t0 = packets[0].ts
        first = self.ring.total
        self.ring.extend(packets)
        shown = len(packets)
        if self._rows is not None:
            before = len(self._rows)
            t0 = self._t0
            self._rows.extend(
                first + offset for offset, p in enumerate(packets) if self.filter.matches(row_text(p, t0))
            )
            shown = len(self._rows) - before
        if not self.following:
            self.new_count += shown
        self._dirty = True

    def clear(self) -> None:
        self.ring.clear()
        self._seen_dropped = self.ring.dropped
        self._rows = [] if self._rows is not None else None
        self._cache.clear()
        self.cursor = -1
        self.new_count = 0
        self._dirty = True
        self._flush()

    def set_filter(self, text: str) -> None:
        self.filter = DisplayFilter(text)
        if not self.filter:
            self._rows = None
        else:
            base = self.ring.total - len(self.ring)
            t0 = self._t0 or 0.0
            self._rows = [base + i for i, p in enumerate(self.ring) if self.filter.matches(row_text(p, t0))]
        self._cache.clear()
        self.cursor = -1
        self._dirty = True
        self._flush()

    # ---- view
    @property
    def row_count(self) -> int:
        if self._rows is None:
            return len(self.ring)
        return len(self._rows)

    def packet_at(self, row: int) -> PacketSummary | None:
        """The packet shown on a row of the view, or None if it fell out of the ring."""
        base = self.ring.total - len(self.ring)
        number = (base + row) if self._rows is None else self._rows[row]
        position = number - base
        return self.ring[position] if 0 <= position < len(self.ring) else None

    def _prune(self) -> int:
        """Forget rows whose packets fell out of the ring; return how many rows went."""
        dropped_now = self.ring.dropped - self._seen_dropped
        self._seen_dropped = self.ring.dropped
        if dropped_now <= 0:
            return 0
        if self._rows is None:
            gone = dropped_now
        else:
            base = self.ring.total - len(self.ring)
            gone = bisect_left(self._rows, base)
            del self._rows[:gone]
        self._cache.clear()  # row numbers moved
        return gone

    def _flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        gone = self._prune()
        self.virtual_size = Size(self._cache_width or self.scrollable_content_region.width, self.row_count)
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
            self.cursor = -1
        elif gone:
            # keep the rows the user is reading where they are while old packets fall off the ring
            self.scroll_to(y=max(0, self.scroll_y - gone), animate=False, immediate=True)
            self.cursor = max(0, self.cursor - gone) if self.cursor >= 0 else self.cursor
        self.refresh()

    def watch_following(self, following: bool) -> None:
        self.set_class(not following, "-paused")
        if following:
            self.new_count = 0
            self._dirty = True

    def render_line(self, y: int) -> Strip:
        # rows as wide as what shows beside the scrollbar: a row under it was cut there on every frame, and
        # rich keeps each cut row in its own cache (16k entries, ~1 KB each, filled by rows gone by)
        width = self.scrollable_content_region.width
        if width != self._cache_width:
            self._cache.clear()
            self._cache_width = width
            self._columns = columns_for(width)
        if self.size.height != self._cache_height:
            self._cache_height = self.size.height
            self._cache.maxsize = max(CACHE_MIN_ROWS, CACHE_SCREENS * self._cache_height)
            self._cache.clear()
        row = int(self.scroll_y) + y
        if row >= self.row_count:
            return Strip.blank(width)
        cursor = self.cursor if self.cursor >= 0 else (self.row_count - 1 if not self.following else -2)
        if row == cursor:
            return self._render_row(row, width, cursor=True)
        strip = self._cache.get(row)
        if strip is None:
            strip = self._render_row(row, width, cursor=False)
            self._cache.set(row, strip)
        return strip

    def _render_row(self, row: int, width: int, *, cursor: bool) -> Strip:
        packet = self.packet_at(row)
        if packet is None:
            return Strip.blank(width)
        if cursor:
            style = self.get_component_rich_style("packet-list--cursor")
        else:
            style = self.get_component_rich_style(self._kind(packet))
        text = row_text(packet, self._t0 or 0.0, self._columns)
        return Strip([Segment(text[:width].ljust(width), style)], width)

    @staticmethod
    def _kind(packet: PacketSummary) -> str:
        if packet.vni is not None:
            return "packet-list--vxlan"
        if packet.dns_query or packet.protocol == "DNS":
            return "packet-list--dns"
        if packet.protocol == "TCP" or packet.tcp_flags:
            return "packet-list--tcp"
        if packet.protocol == "UDP":
            return "packet-list--udp"
        return "packet-list--other"

    # ---- keys and mouse
    def _visible_rows(self) -> int:
        return max(1, self.size.height)

    def _move_cursor(self, row: int) -> None:
        if self.row_count == 0:
            return
        row = max(0, min(self.row_count - 1, row))
        at_end = row == self.row_count - 1
        self.following = at_end
        self.cursor = -1 if at_end else row
        top = int(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + self._visible_rows():
            self.scroll_to(y=row - self._visible_rows() + 1, animate=False, immediate=True)
        self._cache.discard(row)
        self.refresh()

    def _current_row(self) -> int:
        return self.cursor if self.cursor >= 0 else self.row_count - 1

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self._current_row() + delta)

    def action_page(self, delta: int) -> None:
        self._move_cursor(self._current_row() + delta * self._visible_rows())

    def action_top(self) -> None:
        self._move_cursor(0)

    def action_follow(self) -> None:
        self.following = True
        self.cursor = -1
        self._dirty = True
        self._flush()

    def pause(self) -> None:
        self.following = False
        if self.cursor < 0:
            self.cursor = max(0, self.row_count - 1)

    def action_select(self) -> None:
        row = self._current_row()
        packet = self.packet_at(row) if 0 <= row < self.row_count else None
        if packet is not None:
            self.post_message(self.Selected(self, packet))

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_y) + event.y
        if 0 <= row < self.row_count:
            self._move_cursor(row)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # scrolling up with the mouse wheel pauses the tail; reaching the bottom again follows it
        if new_value < old_value and self.following and self.row_count > self._visible_rows():
            self.following = False
            if self.cursor < 0:
                self.cursor = min(self.row_count - 1, int(new_value) + self._visible_rows() - 1)
        elif self.is_vertical_scroll_end and not self.following and self.cursor < 0:
            self.following = True
