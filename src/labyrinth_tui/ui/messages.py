"""App-wide messages: what a source said, carried onto the UI's message queue."""

from __future__ import annotations

from textual.message import Message

from labyrinth_tui.model.text import inert_fields
from labyrinth_tui.sources import PacketBatch, SourceEvent


class SourceEventMessage(Message):
    """One event from the source. Handlers on the main screen own the UI state it changes.

    This is the one door from the sources to the widgets: every name, status and log line in `event`
    (from a node, a cluster's API or a file) is made inert here, so no widget can receive an escape.
    Packets are made inert where they are parsed (SummaryParser, the bundle reader): walking every
    packet of every batch again here would cost the ingest rate for nothing.
    """

    def __init__(self, event: SourceEvent) -> None:
        super().__init__()
        self.event = event if isinstance(event, PacketBatch) else inert_fields(event)
