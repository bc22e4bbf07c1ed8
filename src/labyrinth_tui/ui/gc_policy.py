"""Keep the cyclic garbage collector from pausing the UI while hundreds of thousands of packets are alive."""

from __future__ import annotations

import gc
from typing import Any

from textual.app import App

FREEZE_EVERY = 0.5  # seconds


def keep_gc_pauses_short(app: App[Any]) -> None:
    """Move what is alive now out of the collector's reach, twice a second.

    A full (gen 2) collection walks every live object; with a 100k-packet ring per stream that is a
    60-150 ms frame drop. Packets hold no reference cycles, so reference counting still frees them when
    they fall off a ring: freezing only spares the collector from re-walking them.
    """

    def freeze() -> None:
        gc.freeze()

    app.set_interval(FREEZE_EVERY, freeze)
