"""StreamsArea: where live packet streams open, several at once — a grid that reflows, or tabs."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Container, Grid
from textual.widgets import Static, Tab, Tabs

from labyrinth_tui.sources import StreamSpec
from labyrinth_tui.ui.widgets.stream_pane import StreamPane, pane_id

MIN_PANE_WIDTH = 60


class StreamsArea(Container):
    """Empty until a stream opens; says how to open one. `grid` shows every stream, `tabs` one at a time."""

    HINT = (
        "[dim]No streams open. Select an interface in the tree and press [b]enter[/b] "
        "to watch its packets live.[/dim]"
    )

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = "Streams"
        self.layout_mode = "grid"

    def compose(self) -> ComposeResult:
        yield Tabs(id="stream-tabs")
        yield Static(self.HINT, id="streams-hint", classes="hint")
        yield Grid(id="stream-grid")

    def on_mount(self) -> None:
        self.query_one(Tabs).display = False

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
        self._reflow()
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
        self._reflow()

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        self._reflow()

    def on_resize(self) -> None:
        self._reflow()

    def _reflow(self) -> None:
        panes = self.panes
        self.query_one("#streams-hint").display = not panes
        tabs = self.query_one(Tabs)
        tabs.display = self.layout_mode == "tabs" and bool(panes)
        grid = self.query_one("#stream-grid", Grid)
        if self.layout_mode == "tabs":
            active = tabs.active
            for pane in panes:
                pane.display = f"tab-{pane.id}" == active or (active is None and pane is panes[0])
            grid.styles.grid_size_columns = 1
            grid.styles.grid_size_rows = 1
            return
        for pane in panes:
            pane.display = True
        count = max(1, len(panes))
        columns = max(1, min(count, self.size.width // MIN_PANE_WIDTH or 1))
        rows = -(-count // columns)
        grid.styles.grid_size_columns = columns
        grid.styles.grid_size_rows = rows

    def pane_for_key(self, spec_key: str) -> StreamPane | None:
        return next((p for p in self.panes if p.spec.key == spec_key), None)

    @staticmethod
    def id_for(spec: StreamSpec) -> str:
        return pane_id(spec)
