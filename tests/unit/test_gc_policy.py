"""The app's collector policy frees garbage: one freeze after start-up, then cyclic garbage that reached
the oldest generation is still collected while the app is quiet (it was kept for good with a timed freeze)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from textual.app import App

from labyrinth_tui.ui.gc_policy import THRESHOLDS, keep_gc_pauses_short


class Quiet(App[None]):
    def on_mount(self) -> None:
        keep_gc_pauses_short(self, sweep_every=0.1)


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_old_cyclic_garbage_is_collected_while_the_app_is_quiet(restored_gc: None) -> None:
    app = Quiet()
    async with app.run_test() as pilot:
        await pilot.pause(0.2)
        assert gc.get_threshold() == THRESHOLDS
        frozen = gc.get_freeze_count()
        garbage: Any = Cycle()
        ref = weakref.ref(garbage)
        gc.collect(1)
        gc.collect(1)  # survived two young collections: it is in the oldest generation now
        assert gc.is_tracked(garbage)
        del garbage  # now garbage that only a full collection can free
        for _ in range(50):
            if ref() is None:
                break
            await pilot.pause(0.05)
        assert ref() is None, "cyclic garbage in the oldest generation was never collected"
        assert gc.get_freeze_count() <= frozen  # no freeze after start-up: nothing new hidden
