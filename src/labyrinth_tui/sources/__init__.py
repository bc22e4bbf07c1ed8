"""Sources feed the app: one interface whether the cluster is the lab, a real cluster or a replay."""

from labyrinth_tui.sources.base import (
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

__all__ = [
    "PacketBatch",
    "ProgressEvent",
    "Source",
    "SourceEvent",
    "StreamDrops",
    "StreamLag",
    "StreamSpec",
    "StreamState",
    "StreamStatus",
    "TopologyEvent",
]
