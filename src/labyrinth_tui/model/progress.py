"""Step and StepState: provisioning progress as data, shared by the lab, the cloud and the UI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a provisioning run, as last reported. A newer Step with the same key supersedes it."""

    group: str  # a node name, or "cluster"
    name: str
    state: StepState = StepState.PENDING
    done: int = 0
    total: int = 1
    elapsed: float = 0.0
    log: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.name)

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)
