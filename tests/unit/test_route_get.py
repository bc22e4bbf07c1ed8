"""Each node's routes for a journey in one `ip -batch` round trip: what a node says, read per address."""

from __future__ import annotations

from typing import Any

import pytest

from labyrinth_tui.model.topology import Route
from labyrinth_tui.nodes.runner import CommandResult
from labyrinth_tui.probes.route_get import ROUTE_BATCH_ARGV, route_batch_input, routes_for

VXLAN = '[{"dst":"10.0.2.215","gateway":"10.0.2.244","dev":"cilium_vxlan","prefsrc":"10.0.1.49","flags":["onlink"],"uid":0,"cache":[]}]'  # noqa: E501
ENS4 = '[{"dst":"10.168.0.5","dev":"ens4","prefsrc":"10.168.0.4","flags":[],"uid":0,"cache":[]}]'


class Node:
    """Answers the batch as iproute2 6.1 does (lines of JSON; a failed route on stderr by its line)."""

    def __init__(self, stdout: str, stderr: str = "", status: int = 0) -> None:
        self.reply = (stdout, stderr, status)
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    async def run(self, argv: Any, *, input: str | None = None, **kwargs: Any) -> CommandResult:
        self.calls.append((tuple(argv), input))
        out, err, status = self.reply
        return CommandResult(tuple(argv), status, out, err)


async def test_one_round_trip_per_node_and_each_address_gets_its_route() -> None:
    node1 = Node(f"{VXLAN}\n{ENS4}\n")
    routes = await routes_for({"node-1": node1}, [("node-1", "10.0.2.215"), ("node-1", "10.168.0.5")])
    assert routes == {
        ("node-1", "10.0.2.215"): Route("10.0.2.215", "10.0.2.244", "cilium_vxlan", "10.0.1.49"),
        ("node-1", "10.168.0.5"): Route("10.168.0.5", None, "ens4", "10.168.0.4"),
    }
    assert node1.calls == [(ROUTE_BATCH_ARGV, "route get 10.0.2.215\nroute get 10.168.0.5\n")]


async def test_a_route_that_fails_says_why_and_the_others_still_come() -> None:
    node1 = Node(f"{ENS4}\n", "RTNETLINK answers: Network is unreachable\nCommand failed -:1\n", status=1)
    routes = await routes_for({"node-1": node1}, [("node-1", "10.9.9.9"), ("node-1", "10.168.0.5")])
    assert routes[("node-1", "10.9.9.9")] == "RTNETLINK answers: Network is unreachable"
    assert routes[("node-1", "10.168.0.5")] == Route("10.168.0.5", None, "ens4", "10.168.0.4")


async def test_no_session_and_a_node_without_ip_are_said_per_address() -> None:
    gone = Node("", "sh: 1: ip: not found\n", status=127)
    routes = await routes_for({"node-2": gone}, [("node-1", "10.0.2.215"), ("node-2", "10.0.1.15")])
    assert routes[("node-1", "10.0.2.215")] == "no session to the node"
    assert routes[("node-2", "10.0.1.15")] == "sh: 1: ip: not found"


def test_only_addresses_reach_ip_s_command_language() -> None:
    with pytest.raises(ValueError):
        route_batch_input(["10.0.0.1\nlink del ens4"])
