"""Snapshots of the app with no source: the empty main screen and the help screen."""

from __future__ import annotations

from typing import Any

from labyrinth_tui.ui.app import make_app


class TestFirstStart:
    def test_empty_main_screen_80x24(self, snap_compare: Any) -> None:
        """Narrow (80 columns): the Topology / Streams / Details bar, the topology pane alone saying there is
        no cluster yet, and a compact footer whose keys fit (`v` switches the pane, `?` lists the rest)."""
        assert snap_compare(make_app(None), terminal_size=(80, 24))

    def test_help_screen(self, snap_compare: Any) -> None:
        """`?` lists every binding of the main screen and the app."""
        assert snap_compare(make_app(None), press=["question_mark"], terminal_size=(100, 30))
