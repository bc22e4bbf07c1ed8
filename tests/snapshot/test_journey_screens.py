"""Snapshots of the journey and tour screens, driven by the article's synthetic run (deterministic)."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from labyrinth_tui.journey.tour import tour_steps
from labyrinth_tui.sources.journey_replay import report_from_bundle
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.journey import JourneyScreen, TourScreen
from tests.fakes.article_journey import article_report


def _push(screen_factory: Any, *keys: str) -> Any:
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(screen_factory())
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await pilot.pause()

    return run_before


class TestJourneyScreen:
    def test_article_journey(self, snap_compare: Any) -> None:
        """Header with node-2's clock 2500µs ahead, the DNS walk (NXDOMAIN then 10.105.134.33), then the SYN's
        six hops: DNAT on node-1's cilium_vxlan with kube-proxy's counters beside it, encap/decap VNI 2."""
        app = make_app(None)
        assert snap_compare(
            app, terminal_size=(170, 50), run_before=_push(lambda: JourneyScreen(article_report()))
        )

    def test_syn_hop_expanded_to_its_packet(self, snap_compare: Any) -> None:
        """The SYN's first hop (client's lxc) expanded: frame number, seq 1000000, ip id, both clocks."""
        app = make_app(None)
        run_before = _push(lambda: JourneyScreen(article_report()), "enter")
        assert snap_compare(app, terminal_size=(170, 50), run_before=run_before)

    def test_syn_lost_on_the_wire(self, snap_compare: Any) -> None:
        """The SYN vanishes after node-1's ens4: three hops, the last 'last seen here'; no SYN-ACK, no ACK."""
        app = make_app(None)
        run_before = _push(lambda: JourneyScreen(article_report(drop_syn_after=3)))
        assert snap_compare(app, terminal_size=(170, 40), run_before=run_before)

    def test_recorded_in_the_lab(self, snap_compare: Any) -> None:
        """The journey recorded in an eBPF lab (shipped bundle): real µs between hops, VNI 2; under each hop
        its tcx programs' counts, and under the DNAT hop the eBPF translation with kube-proxy's chain at
        0 packets — bypassed. 170 columns: the evidence goes under a hop, not in a sliver beside it."""
        app = make_app(None)
        run_before = _push(lambda: JourneyScreen(report_from_bundle()))
        assert snap_compare(app, terminal_size=(170, 50), run_before=run_before)

    def test_recorded_in_the_lab_at_120_columns(self, snap_compare: Any) -> None:
        """The same at 120 columns: the page opens at its top (who, clocks, DNS), every hop's row and its
        evidence readable (the evidence column once had no width left: nothing drew below the first hop)."""
        app = make_app(None)
        run_before = _push(lambda: JourneyScreen(report_from_bundle()))
        assert snap_compare(app, terminal_size=(120, 45), run_before=run_before)

    def test_recorded_in_the_lab_roomy(self, snap_compare: Any) -> None:
        """At 200 columns the evidence has room beside each hop (the -roomy breakpoint)."""
        app = make_app(None)
        run_before = _push(lambda: JourneyScreen(report_from_bundle()))
        assert snap_compare(app, terminal_size=(200, 50), run_before=run_before)


class TestTourScreen:
    def test_all_steps_pass(self, snap_compare: Any) -> None:
        """Seven ✓ steps of the article, each with what was seen, and '7/7 steps passed'."""
        report = article_report()
        app = make_app(None)
        run_before = _push(lambda: TourScreen(tour_steps(report), report))
        assert snap_compare(app, terminal_size=(170, 40), run_before=run_before)

    def test_lost_syn_fails_two_steps(self, snap_compare: Any) -> None:
        """SYN lost after node-1's ens4: UDP 8472 and arrival show ✗ with what was seen; 5/7 passed."""
        report = article_report(drop_syn_after=3)
        app = make_app(None)
        run_before = _push(lambda: TourScreen(tour_steps(report), report))
        assert snap_compare(app, terminal_size=(170, 40), run_before=run_before)
