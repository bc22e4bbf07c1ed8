"""CommandResult, CommandRunner and StreamRunner: what running a command on a node gives, and who can.

Pure (no asyncssh), so probes are typed against these protocols without importing the SSH session.
NodeSession satisfies StreamRunner (checked by mypy at the bottom of nodes/session.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self


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


class LineStream(Protocol):
    """A remote command's stdout as lines; see nodes/stream.py RemoteStream for the behaviour."""

    pgid: int | None
    exit_status: int | None
    stop_problem: str | None

    @property
    def stderr_tail(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float = 3.0) -> None: ...

    def __aiter__(self) -> Self: ...

    async def __anext__(self) -> str: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class StreamRunner(CommandRunner, Protocol):
    """A runner that can also stream a long-running command (a capture)."""

    def stream(
        self, argv: Sequence[str], *, timeout: float | None = None, privilege: Sequence[str] = ()
    ) -> LineStream: ...
