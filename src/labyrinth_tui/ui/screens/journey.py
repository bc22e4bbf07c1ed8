"""JourneyScreen(report): the journey view; TourScreen: the article's steps ✓/✗, run in a worker if asked."""

from __future__ import annotations

from collections.abc import Sequence

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.tour import TourStep
from labyrinth_tui.sources.tour import TourRun, run_failed
from labyrinth_tui.ui.widgets.fitted_footer import FittedFooter
from labyrinth_tui.ui.widgets.journey_view import HopView, JourneyView, TourStepView


class JourneyScreen(Screen[None]):
    """One run of the article's traffic: DNS phase, then SYN / SYN-ACK / ACK across both nodes."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("e", "expand_all", "Expand all"),
        Binding("c", "collapse_all", "Collapse all"),
    ]

    def __init__(self, report: JourneyReport) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        yield Header()
        yield JourneyView(self.report, id="journey-view")
        yield FittedFooter()

    def on_mount(self) -> None:
        self.sub_title = "journey"
        first = self.query(HopView).first() if self.query(HopView) else None
        if first is not None:
            # the page opens at its top (who, clocks, DNS): the first hop has the keys, not the viewport
            first.focus(scroll_visible=False)

    def action_expand_all(self) -> None:
        for hop in self.query(HopView):
            hop.expanded = True

    def action_collapse_all(self) -> None:
        for hop in self.query(HopView):
            hop.expanded = False


class TourScreen(Screen[None]):
    """The article as a checklist. Given steps, shows them; given `run`, runs it in a worker first."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("j", "open_journey", "Journey"),
        Binding("r", "rerun", "Run again"),
    ]

    def __init__(
        self,
        steps: Sequence[TourStep] = (),
        report: JourneyReport | None = None,
        run: TourRun | None = None,
    ) -> None:
        super().__init__()
        self.steps = tuple(steps)
        self.report = report
        self.run = run

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="tour-summary", markup=False)
        yield VerticalScroll(id="tour-steps")
        yield FittedFooter()

    async def on_mount(self) -> None:
        self.sub_title = "tour"
        if self.run is not None and not self.steps:
            self.action_rerun()
        else:
            await self._show(self.steps)

    async def _show(self, steps: tuple[TourStep, ...]) -> None:
        box = self.query_one("#tour-steps", VerticalScroll)
        await box.remove_children()
        await box.mount_all([TourStepView(s) for s in steps])
        passed = sum(s.passed for s in steps)
        summary = self.query_one("#tour-summary", Static)
        summary.update(f"{passed}/{len(steps)} steps passed" if steps else "no steps run")
        summary.set_class(bool(steps) and passed == len(steps), "-passed")
        summary.set_class(bool(steps) and passed != len(steps), "-failed")

    def action_rerun(self) -> None:
        if self.run is None:
            return
        self.query_one("#tour-summary", Static).update("running the article's traffic on every hop…")
        self._run_tour()

    @work(exclusive=True, group="tour", exit_on_error=False)
    async def _run_tour(self) -> tuple[JourneyReport | None, tuple[TourStep, ...]]:
        # the worker only computes: the screen shows its result in on_worker_state_changed
        assert self.run is not None
        return await self.run()

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "tour":
            return
        if event.state is WorkerState.SUCCESS and event.worker.result is not None:
            self.report, self.steps = event.worker.result
            await self._show(self.steps)
        elif event.state is WorkerState.ERROR:
            _, self.steps = run_failed(str(event.worker.error))
            await self._show(self.steps)

    def action_open_journey(self) -> None:
        if self.report is not None:
            self.app.push_screen(JourneyScreen(self.report))
        else:
            self.notify("no journey yet: the tour has not run", severity="warning")
