"""StreamsArea: where live packet streams open, several at once."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static


class StreamsArea(Container):
    """Empty until a stream opens; says how to open one."""

    HINT = (
        "[dim]No streams open. Select an interface in the tree and press [b]enter[/b] "
        "to watch its packets live.[/dim]"
    )

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = "Streams"

    def compose(self) -> ComposeResult:
        yield Static(self.HINT, id="streams-hint", classes="hint")
