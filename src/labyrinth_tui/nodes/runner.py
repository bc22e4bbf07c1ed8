"""CommandResult and CommandRunner: what running a command on a node gives, and who can do it.

Pure (no asyncssh), so probes can be typed against a runner without importing the SSH session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_status: int  # -1 when the command died of a signal (see stderr)
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs argv on one node. NodeSession is one; tests may pass another."""

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str: ...

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = 30.0,
        input: str | None = None,
        check: bool = True,
    ) -> CommandResult: ...
