"""Typed failures of reaching a node; each names the node and says why, in words for a person."""

from __future__ import annotations

from collections.abc import Sequence

from labyrinth_tui.model.text import inert
from labyrinth_tui.nodes.commands import describe


class NodeError(Exception):
    """Something went wrong with node `node`; `reason` says what, for a person.

    `retryable` says whether trying again later may help (a refused TCP connection may; a wrong key won't).
    """

    retryable_by_default = False

    def __init__(self, node: str, reason: str, *, retryable: bool | None = None) -> None:
        # the reason often carries the node's own words (stderr, asyncssh's text): never an escape
        reason = inert(reason)
        super().__init__(f"{node}: {reason}")
        self.node = node
        self.reason = reason
        self.retryable = self.retryable_by_default if retryable is None else retryable


class NodeUnreachable(NodeError):
    """No SSH connection could be made (refused, no route, DNS, authentication, netns missing)."""

    retryable_by_default = True


class NodeTimeout(NodeError):
    """A command (or the connection attempt) took longer than allowed."""

    retryable_by_default = True


class ConnectionLost(NodeError):
    """The connection went away while it was in use (dropped, or keepalive found the node silent)."""


class HostKeyRejected(NodeError):
    """The node's host key is not the one we trust (changed, revoked, or refused by the user)."""


class CommandFailed(NodeError):
    """The remote command ran and exited non-zero (only raised when `check=True`)."""

    def __init__(self, node: str, argv: Sequence[str], exit_status: int, stderr: str) -> None:
        first = stderr.strip().splitlines()[-1] if stderr.strip() else "no stderr"
        super().__init__(node, f"{describe(argv, node)} exited {exit_status}: {first[:300]}")
        self.argv = tuple(argv)
        self.exit_status = exit_status
        self.stderr = stderr
