"""Keep the cyclic garbage collector from pausing the UI, without ever hiding garbage from it."""

from __future__ import annotations

import gc
from typing import Any

from textual.app import App

# gen 0 runs after this many net allocations of tracked objects (CPython's default: 700, 10, 10).
# Packets are tuples held by rings, not cycles: a larger gen-0 budget and rarer older collections
# mean fewer walks of the 100k-packet rings, while every collection still frees real garbage.
THRESHOLDS = (50_000, 20, 100)
# With those thresholds a full collection waits for 100 of gen 1's, hours when the app is near idle,
# and Textual's own garbage that lived past two young collections (cached strips and their caches,
# measured with gc.DEBUG_SAVEALL: ~10k objects a minute) waited with it. So: a full collection
# every SWEEP_EVERY seconds while the app is quiet, i.e. allocated too little to run gen 0 more than
# QUIET_GEN0 times since the last check. While packets stream nothing changes: no pause in a busy frame.
SWEEP_EVERY = 30.0
QUIET_GEN0 = 5


def keep_gc_pauses_short(app: App[Any], *, sweep_every: float = SWEEP_EVERY) -> None:
    """Once, after start-up: freeze what start-up made (the app, widgets, imported modules), tune thresholds.

    `gc.freeze()` on a timer moved everything alive at each tick into the permanent generation,
    including cyclic garbage not yet collected: it was never freed (the issue measured +21 MB a
    minute with three quiet streams). One freeze after start-up only spares the collector the objects
    that live as long as the app; everything made later stays collectable, and is collected in full
    whenever the app is quiet (bench/soak.py measures the slope).
    """
    seen = [0]

    def settle() -> None:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*THRESHOLDS)
        seen[0] = gc.get_stats()[0]["collections"]

    def sweep_when_quiet() -> None:
        if gc.get_stats()[0]["collections"] - seen[0] <= QUIET_GEN0:
            gc.collect()
        seen[0] = gc.get_stats()[0]["collections"]

    app.call_after_refresh(settle)
    app.set_interval(sweep_every, sweep_when_quiet)
