"""PhaseTracker: a node script's `::plan/::phase/::done/::skip/::fail` lines → progress Steps (masked)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Final

from labyrinth_tui.cloud.bootstrap.masking import Masker
from labyrinth_tui.model.progress import Step, StepState

Progress = Callable[[Step], None]
TAIL_LINES: Final = 12  # what a failed step shows of its phase's last output
RUNNING_EVERY: Final = 0.25  # s between two RUNNING updates of one phase (apt prints thousands of lines)


class PhaseTracker:
    """Reads one script's output line by line; reports each phase as a Step of group `node`."""

    def __init__(
        self, node: str, progress: Progress, masker: Masker, *, clock: Callable[[], float] = time.monotonic
    ):
        self.node = node
        self._progress = progress
        self._mask = masker
        self._clock = clock
        self.plan: list[str] = []
        self.current: str | None = None
        self.failed: str | None = None
        self.completed = False
        self.done: list[str] = []
        self.skipped: list[str] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._started = 0.0
        self._last_emit = 0.0

    def _emit(self, name: str, state: StepState, log: str = "", elapsed: float = 0.0) -> None:
        finished = state in (StepState.DONE, StepState.SKIPPED)
        self._progress(self._mask.step(Step(self.node, name, state, int(finished), 1, elapsed, log)))

    def tail_text(self) -> str:
        return self._mask("\n".join(self.tail))

    def feed(self, line: str) -> None:
        """One line of the script's output (without its newline)."""
        if not line.startswith("::"):
            self.tail.append(line)
            now = self._clock()
            if self.current is not None and now - self._last_emit >= RUNNING_EVERY:
                self._last_emit = now
                self._emit(self.current, StepState.RUNNING, self._mask(line), now - self._started)
            return
        word, _, rest = line[2:].partition(" ")
        if word == "plan":
            self.plan = rest.split()
            for name in self.plan:
                self._emit(name, StepState.PENDING)
        elif word == "phase":
            self.current, self._started = rest.strip(), self._clock()
            self._last_emit = self._started
            self.tail.clear()
            self._emit(self.current, StepState.RUNNING, elapsed=0.0)
        elif word == "done":
            name = rest.strip()
            self.done.append(name)
            last = self.tail[-1] if self.tail else ""
            self._emit(name, StepState.DONE, self._mask(last), self._clock() - self._started)
            self.current = None
        elif word == "skip":
            self.skipped.append(rest.strip())
            self._emit(rest.strip(), StepState.SKIPPED, "already done")
        elif word == "fail":
            self.fail(rest.split(" ", 1)[0])
        elif word == "complete":
            self.completed = True
        else:
            self.tail.append(line)

    def fail(self, phase: str | None = None, why: str = "") -> str:
        """Mark `phase` (else the running one) FAILED with its last lines; returns the phase's name."""
        name = phase or self.current or (self.failed or "script")
        if self.failed == name:
            return name
        self.failed = name
        log = self.tail_text()
        if why:
            log = f"{log}\n{self._mask(why)}".strip()
        elapsed = self._clock() - self._started if self.current == name else 0.0
        self._emit(name, StepState.FAILED, log, elapsed)
        self.current = None
        return name
