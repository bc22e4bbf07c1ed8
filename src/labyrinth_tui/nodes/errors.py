"""Typed failures of reaching a node; each names the node and says why, in words for a person."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

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


# sudo's own words when it will not run a command for this login (sudo 1.9: `sudo -n true` as a user
# without sudo rights prints the first; with some rights but not for this command, the "Sorry" line)
_SUDO_REFUSALS: Final = re.compile(
    r"^(sudo: (a password is required|a terminal is required.*|.*account validation failure.*)"
    r"|.* is not in the sudoers file.*|Sorry, user .* is not allowed to execute .*)$"
)
_SUDO_MISSING: Final = re.compile(r"^.*\bsudo: (command )?not found$")


class SudoRefused(NodeError):
    """`sudo -n` would not run a command for the SSH login (no sudo rights, a password asked, no sudo at all):
    nothing that needs root can work on that node, whatever the command; `said` is sudo's own line."""

    def __init__(self, node: str, argv: Sequence[str], said: str) -> None:
        what = describe(argv, node).removesuffix(f" on {node}")
        super().__init__(
            node,
            f"sudo -n refused {what}: {said[:200]} "
            "(the SSH user needs passwordless sudo on the node, or log in as root)",
        )
        self.argv = tuple(argv)


def sudo_refusal(node: str, argv: Sequence[str], exit_status: int, stderr: str) -> SudoRefused | None:
    """The refusal, when argv ran behind `sudo -n` and sudo itself (not the command) said no."""
    if list(argv[:2]) != ["sudo", "-n"] or exit_status not in (1, 127):
        return None
    for line in stderr.strip().splitlines():
        if exit_status == 1 and _SUDO_REFUSALS.match(line):
            return SudoRefused(node, argv, line.removeprefix("sudo: "))
        if exit_status == 127 and _SUDO_MISSING.match(line):
            return SudoRefused(node, argv, "sudo is not installed")
    return None
