"""App-wide messages: what a source said, carried onto the UI's message queue."""

from __future__ import annotations

from textual.message import Message

from labyrinth_tui.sources import SourceEvent


class SourceEventMessage(Message):
    """One event from the source. Handlers on the main screen own the UI state it changes."""

    def __init__(self, event: SourceEvent) -> None:
        super().__init__()
        self.event = event
