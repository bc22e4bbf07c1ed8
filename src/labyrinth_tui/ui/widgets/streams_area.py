"""StreamsArea: where live packet streams open, several at once — a grid that reflows, or tabs."""

from __future__ import annotations

from typing import Literal

from textual import on
from textual.app import ComposeResult
from textual.containers import Container, Grid
from textual.reactive import reactive
from textual.widgets import Static, Tab, Tabs

from labyrinth_tui.sources import StreamSpec
from labyrinth_tui.ui.widgets.stream_pane import StreamPane

MIN_PANE_WIDTH = 60

LayoutMode = Literal["grid", "tabs"]


class StreamsArea(Container):
    """Empty until a stream opens; says how to open one. `grid` shows every stream, `tabs` one at a time.

    What shows is said by CSS classes (styles/main.tcss): `-tabs` for the layout, `-has-streams` once a
    stream is open, `-active` on the pane of the active tab. Only the grid's columns are computed here.
    """

    HINT = (
        "[dim]No streams open. Select an interface in the tree and press [b]enter[/b] "
        "to watch its packets live.[/dim]"
    )

    layout_mode: reactive[LayoutMode] = reactive("grid")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = "Streams"

    def compose(self) -> ComposeResult:
        yield Tabs(id="stream-tabs")
        yield Static(self.HINT, id="streams-hint", classes="hint")
        yield Grid(id="stream-grid")

    def watch_layout_mode(self, mode: LayoutMode) -> None:
        self.set_class(mode == "tabs", "-tabs")
        self._reflow()

    @property
    def panes(self) -> list[StreamPane]:
        return list(self.query_one("#stream-grid", Grid).query_children(StreamPane))

    def pane(self, spec: StreamSpec) -> StreamPane | None:
        return next((p for p in self.panes if p.spec == spec), None)

    async def open(self, spec: StreamSpec) -> StreamPane:
        existing = self.pane(spec)
        if existing is not None:
            self.activate(existing)
            return existing
        pane = StreamPane(spec)
        await self.query_one("#stream-grid", Grid).mount(pane)
        await self.query_one(Tabs).add_tab(Tab(f"{spec.node}·{spec.interface}", id=f"tab-{pane.id}"))
        self.activate(pane)
        return pane

    async def close(self, pane: StreamPane) -> None:
        tabs = self.query_one(Tabs)
        await tabs.remove_tab(f"tab-{pane.id}")
        await pane.remove()
        # The grid keeps its last 4 arrangements and its last list of displayed children, and each holds
        # the panes it had: a closed pane and its 100k-packet ring stayed alive until enough layouts had
        # happened (the last one closed: for good). Drop both now (tests/unit/test_ui_memory.py).
        grid = self.query_one("#stream-grid", Grid)
        grid._clear_arrangement_cache()
        grid.displayed_children  # noqa: B018 — reading it replaces the cached list (it knows the pane left)
        self._reflow()

    def activate(self, pane: StreamPane) -> None:
        self.query_one(Tabs).active = f"tab-{pane.id}"
        pane.packets.focus()
        self._reflow()

    def toggle_layout(self) -> None:
        self.layout_mode = "tabs" if self.layout_mode == "grid" else "grid"

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        self._reflow()

    def on_resize(self) -> None:
        self._reflow()

    def _reflow(self) -> None:
        if not self.is_mounted:
            return
        panes = self.panes
        self.set_class(bool(panes), "-has-streams")
        active = self.query_one(Tabs).active
        for pane in panes:
            pane.set_class(f"tab-{pane.id}" == active or (active is None and pane is panes[0]), "-active")
        grid = self.query_one("#stream-grid", Grid)
        count = 1 if self.layout_mode == "tabs" else max(1, len(panes))
        columns = max(1, min(count, self.size.width // MIN_PANE_WIDTH or 1))
        grid.styles.grid_size_columns = columns
        grid.styles.grid_size_rows = -(-count // columns)

    def pane_for_key(self, spec_key: str) -> StreamPane | None:
        return next((p for p in self.panes if p.spec.key == spec_key), None)
