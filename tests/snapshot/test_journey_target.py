"""Snapshots of the journey's target modal (`j` on a pod) over the main screen, at 80×24."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.journey_target import JourneyTargetScreen
from tests.unit.journey_topology import CLIENT, topology


def _ask(*keys: str) -> Any:
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(JourneyTargetScreen(topology(), CLIENT.qualified_name))
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


class TestJourneyTarget:
    def test_completion_from_the_topology(self, snap_compare: Any) -> None:
        """From the article's client pod: 'node-wrk-2' typed, the rest of 'node-wrk-2-ubuntu24.wrk-2:9999'
        shown dimmed as the completion; tcp chosen; the keys under it (enter, →, ctrl+o, esc)."""
        app = make_app(None)
        assert snap_compare(app, terminal_size=(80, 24), run_before=_ask(*"node-wrk-2"))

    def test_a_bad_target_says_why_in_one_line(self, snap_compare: Any) -> None:
        """'nowhere.wrk-2:9999': one red line under the input, cut with an ellipsis where the modal ends —
        no such service, and the services there are; the modal stays open with the input as typed; udp
        chosen (ctrl+o)."""
        app = make_app(None)
        run_before = _ask(*"nowhere.wrk-2:9999", "ctrl+o", "enter")
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
