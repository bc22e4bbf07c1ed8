"""The tour: run the article's journey and check each of its observations (the CLI and the TUI share it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.tour import TourStep, tour_steps
from labyrinth_tui.lab.state import LabState, load_state
from labyrinth_tui.sources.base import JourneyError
from labyrinth_tui.sources.journey_run import run_journey

TourResult = tuple[JourneyReport | None, tuple[TourStep, ...]]
TourRun = Callable[[], Awaitable[TourResult]]

# the step a tour shows when its journey could not be made at all
RUN_STEP = "the article's traffic, captured on every hop"


def run_failed(reason: str) -> TourResult:
    """A tour whose run could not be made: one ✗ step saying why."""
    return None, (TourStep(RUN_STEP, False, reason),)


def lab_state(prefix: str) -> LabState:
    """The running lab, or a JourneyError saying how to start it."""
    state = load_state(prefix)
    if state is None:
        raise JourneyError(f"lab {prefix!r} is not up: run `labyrinth lab up --prefix {prefix}` first")
    return state


async def run_tour(state: LabState) -> TourResult:
    """Every step, ✓ or ✗; a run that could not be made is one failed step saying why."""
    try:
        report = await run_journey(state)
    except JourneyError as exc:
        return run_failed(str(exc))
    return report, tour_steps(report)


def tour_runner(journey: Callable[[], Awaitable[JourneyReport]]) -> TourRun:
    """What TourScreen(run=…) calls from its worker: make the journey (any source's), check each step.
    Whatever stops the journey becomes one ✗ step with its reason: the app goes on."""

    async def run() -> TourResult:
        try:
            report = await journey()
        except Exception as exc:  # shown as the failed step's reason, never a traceback
            return run_failed(str(exc))
        return report, tour_steps(report)

    return run
