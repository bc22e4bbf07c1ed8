"""What every bench ends with: each goal beside our figure and the anchor's, and exit status 1 on a miss.

`make bench` runs `bench/[!_]*.py` one after another and stops at the first non-zero exit, naming it.
A bench whose figures depend on an idle machine prints the load average it ran under (`load_line`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def load_line() -> str:
    """The 1/5/15-minute load averages and the core count: a figure taken on a busy machine says so."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


@dataclass
class Verdict:
    """Collects goals as a bench checks them; `status()` prints the summary line and gives the exit code."""

    bench: str
    missed: list[str] = field(default_factory=list)
    checked: int = 0

    def goal(self, what: str, ours: str, anchor: str, goal: str, met: bool) -> bool:
        """One goal: our figure, the anchor's in the same run ("" when the goal has none), the goal."""
        self.checked += 1
        beside = f"   anchor {anchor}" if anchor else ""
        print(f"goal  {what:<44} ours {ours}{beside}   goal {goal}   {'met' if met else 'MISSED'}")
        if not met:
            self.missed.append(what)
        return met

    def status(self) -> int:
        """0 when every goal was met, else 1 (after saying which were missed)."""
        if self.missed:
            print(
                f"{self.bench}: MISSED {len(self.missed)} of {self.checked} goals: {'; '.join(self.missed)}"
            )
            return 1
        print(f"{self.bench}: all {self.checked} goals met")
        return 0
