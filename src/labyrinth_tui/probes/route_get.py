"""Each node's route to the other end of a journey (`ip -j route get`), asked over its session."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from labyrinth_tui.model.topology import Route
from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.runner import CommandRunner
from labyrinth_tui.probes.iproute import DiscoveryError, parse_route_get, route_get_argv


async def routes_for(
    sessions: Mapping[str, CommandRunner], queries: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Route | str]:
    """{(node, dst): its Route, or why the node could not say} for every query; never raises."""

    async def one(node: str, dst: str) -> Route | str:
        session = sessions.get(node)
        if session is None:
            return "no session to the node"
        try:
            result = await session.run(route_get_argv(dst), check=False)
        except NodeError as exc:
            return exc.reason
        if result.exit_status != 0:
            return result.stderr.strip()[-160:] or f"ip route get exited {result.exit_status}"
        try:
            return parse_route_get(result.stdout, f"{node}: ip route get {dst}")
        except DiscoveryError as exc:
            return str(exc)

    asked = list(dict.fromkeys(queries))
    answers = await asyncio.gather(*(one(node, dst) for node, dst in asked))
    return dict(zip(asked, answers, strict=True))
