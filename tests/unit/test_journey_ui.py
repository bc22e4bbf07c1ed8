"""Pilot: a hop expands to its packet and collapses again (enter, e, c); the tour screen runs in a worker."""

from __future__ import annotations

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.tour import TourStep, tour_steps
from labyrinth_tui.ui.app import LabyrinthApp
from labyrinth_tui.ui.screens.journey import JourneyScreen, TourScreen
from labyrinth_tui.ui.widgets.journey_view import HopView, TourStepView
from tests.fakes.article import CLIENT_VETH
from tests.fakes.article_journey import article_report
from tests.fakes.waiting import plain


class RecordingApp(LabyrinthApp):
    """The real app, noting every HopView.Toggled that reaches it."""

    def __init__(self) -> None:
        super().__init__(None)
        self.toggled: list[tuple[str, bool]] = []

    def on_hop_view_toggled(self, message: HopView.Toggled) -> None:
        hop = message.hop_view.hop
        self.toggled.append((f"{hop.node}/{hop.interface}", message.expanded))


def _detail_shown(hop: HopView) -> bool:
    return hop.query_one(".hop-detail").display and hop.query_one(".hop-detail").region.height > 0


async def test_enter_expands_the_focused_hop_to_its_packet_and_collapses_it() -> None:
    app = RecordingApp()
    async with app.run_test(size=(170, 50)) as pilot:
        await app.push_screen(JourneyScreen(article_report()))
        await pilot.pause()
        hops = list(app.screen.query(HopView))
        assert len(hops) == 18  # SYN, SYN-ACK, ACK: six hops each
        first = hops[0]
        assert app.focused is first and not _detail_shown(first)
        await pilot.press("enter")
        await pilot.pause()
        assert _detail_shown(first)
        detail = plain(first.query_one(".hop-detail").render())
        assert f"#9 on node-1/{CLIENT_VETH}" in detail and "seq 1000000" in detail
        assert not any(_detail_shown(h) for h in hops[1:])
        await pilot.press("enter")
        await pilot.pause()
        assert not _detail_shown(first)
        assert app.toggled == [(f"node-1/{CLIENT_VETH}", True), (f"node-1/{CLIENT_VETH}", False)]


async def test_expand_all_then_collapse_all() -> None:
    app = RecordingApp()
    async with app.run_test(size=(170, 50)) as pilot:
        await app.push_screen(JourneyScreen(article_report()))
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        hops = list(app.screen.query(HopView))
        assert all(h.expanded and h.has_class("-expanded") for h in hops)
        await pilot.press("c")
        await pilot.pause()
        assert not any(h.expanded or h.has_class("-expanded") for h in hops)
        assert len(app.toggled) == 36


async def test_the_dnat_hop_shows_the_change_and_the_counters_beside_it() -> None:
    app = RecordingApp()
    async with app.run_test(size=(170, 50)) as pilot:
        await app.push_screen(JourneyScreen(article_report()))
        await pilot.pause()
        syn_vxlan = list(app.screen.query(HopView))[1]
        assert (syn_vxlan.hop.node, syn_vxlan.hop.interface) == ("node-1", "cilium_vxlan")
        change = syn_vxlan.query_one(".hop-change")
        assert change.has_class("-nat")
        assert "DNAT 10.105.134.33:9999 → 10.0.2.215:9999" in plain(change.render())
        evidence = plain(syn_vxlan.query_one(".hop-evidence").render(), width=400)
        assert "+1 pkt KUBE-SEP-FXHI2MOU7V5XIHJD → DNAT" in evidence


async def test_tour_runs_in_a_worker_then_opens_the_journey() -> None:
    report = article_report(drop_syn_after=3)

    async def run() -> tuple[JourneyReport | None, tuple[TourStep, ...]]:
        return report, tour_steps(report)

    app = RecordingApp()
    async with app.run_test(size=(170, 40)) as pilot:
        await app.push_screen(TourScreen(run=run))
        await app.workers.wait_for_complete()
        await pilot.pause()
        steps = list(app.screen.query(TourStepView))
        assert [s.step.passed for s in steps] == [True, True, True, True, False, False, True]
        assert plain(app.screen.query_one("#tour-summary").render()).strip() == "5/7 steps passed"
        await pilot.press("j")
        await pilot.pause()
        assert isinstance(app.screen, JourneyScreen) and app.screen.report is report


async def test_a_tour_that_cannot_run_is_one_failed_step_saying_why() -> None:
    async def run() -> tuple[JourneyReport | None, tuple[TourStep, ...]]:
        raise RuntimeError("lab 'x' is not up")

    app = RecordingApp()
    async with app.run_test(size=(120, 30)) as pilot:
        await app.push_screen(TourScreen(run=run))
        await app.workers.wait_for_complete()
        await pilot.pause()
        steps = list(app.screen.query(TourStepView))
        assert len(steps) == 1 and not steps[0].step.passed
        assert "lab 'x' is not up" in steps[0].step.seen
        assert plain(app.screen.query_one("#tour-summary").render()).strip() == "0/1 steps passed"
