"""Channel: one SSH channel running a command, handed by the session that pooled its connection.

The session owns the pool; a Channel carries what a user of the channel needs from it — the process,
how to name a failure on it (lost connection or asyncssh's words) and how to give the channel back —
so RemoteStream never reaches into the session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncssh

from labyrinth_tui.nodes.errors import NodeError


class Channel:
    """`proc` on a pooled connection; `failure(exc, what)` names an error on it; `release()` gives it back."""

    def __init__(
        self,
        proc: asyncssh.SSHClientProcess[str],
        *,
        lost: Callable[[], str | None],
        failure: Callable[[BaseException, str], NodeError],
        release: Callable[[], None],
    ) -> None:
        self.proc = proc
        self._lost = lost
        self._failure = failure
        self._release = release
        self._released = False

    @property
    def lost(self) -> str | None:
        """Why the connection under this channel was lost, or None while it stands."""
        return self._lost()

    def failure(self, exc: BaseException, what: str) -> NodeError:
        return self._failure(exc, what)

    def release(self) -> None:
        """Give the channel's slot back to the pool (once; later calls do nothing)."""
        if not self._released:
            self._released = True
            self._release()


OpenChannel = Callable[[str], Awaitable[Channel]]
"""What a stream needs of its session to start: a shell line in, an open Channel out."""
