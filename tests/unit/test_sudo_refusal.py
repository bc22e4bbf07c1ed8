"""`sudo -n` saying no to the login is told apart from the command itself failing behind sudo."""

from __future__ import annotations

import pytest

from labyrinth_tui.nodes.errors import NodeError, sudo_refusal

SUDO_SH = ["sudo", "-n", "sh", "-s"]


@pytest.mark.parametrize(
    ("status", "stderr", "said"),
    [
        (1, "sudo: a password is required\n", "a password is required"),
        (1, "sudo: a terminal is required to read the password; either use the -S option\n", "a terminal"),
        (1, "Sorry, user ubuntu is not allowed to execute '/usr/bin/sh -s' as root on node-1.\n", "Sorry"),
        (1, "ubuntu is not in the sudoers file.\n", "not in the sudoers file"),
        (127, "sh: 1: sudo: not found\n", "sudo is not installed"),
    ],
)
def test_sudos_refusals_name_node_and_command(status: int, stderr: str, said: str) -> None:
    refused = sudo_refusal("node-1", SUDO_SH, status, stderr)
    assert isinstance(refused, NodeError)
    assert str(refused).startswith("node-1: sudo -n refused `sh -s`: ")
    assert said in str(refused) and "\n" not in str(refused)


@pytest.mark.parametrize(
    ("argv", "status", "stderr"),
    [
        (SUDO_SH, 0, "sudo: a password is required\n"),  # it ran: not a refusal
        (SUDO_SH, 1, "iptables-save: permission denied\n"),  # the command failed, not sudo
        (["sh", "-s"], 1, "sudo: a password is required\n"),  # no sudo in front: not ours to say
        (SUDO_SH, 127, "sh: 1: tcpdump: not found\n"),
    ],
)
def test_anything_else_is_not_a_refusal(argv: list[str], status: int, stderr: str) -> None:
    assert sudo_refusal("node-1", argv, status, stderr) is None
