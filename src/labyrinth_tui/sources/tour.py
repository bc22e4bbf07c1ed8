"""The tour: run the article's journey on the lab and check each of its observations (reused by the TUI)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.tour import TourStep, tour_steps
from labyrinth_tui.lab.state import LabState, load_state
from labyrinth_tui.sources.base import JourneyError
from labyrinth_tui.sources.journey_run import run_journey


def lab_state(prefix: str) -> LabState:
    """The running lab, or a JourneyError saying how to start it."""
    state = load_state(prefix)
    if state is None:
        raise JourneyError(f"lab {prefix!r} is not up: run `labyrinth lab up --prefix {prefix}` first")
    return state


async def run_tour(state: LabState) -> tuple[JourneyReport | None, tuple[TourStep, ...]]:
    """Every step, ✓ or ✗; a run that could not be made is one failed step saying why."""
    try:
        report = await run_journey(state)
    except JourneyError as exc:
        return None, (TourStep("the article's traffic, captured on every hop", False, str(exc)),)
    return report, tour_steps(report)


def tour_runner(prefix: str) -> Callable[[], Awaitable[tuple[JourneyReport | None, tuple[TourStep, ...]]]]:
    """What TourScreen(run=…) calls from its worker: load the lab `prefix`, run the tour (a lab that is not
    up is one ✗ step saying how to start it)."""

    async def run() -> tuple[JourneyReport | None, tuple[TourStep, ...]]:
        try:
            state = lab_state(prefix)
        except JourneyError as exc:
            return None, (TourStep("the lab is up", False, str(exc)),)
        return await run_tour(state)

    return run
