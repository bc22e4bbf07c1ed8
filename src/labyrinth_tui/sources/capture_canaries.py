"""A live stream's canaries over SSH: the readiness rounds, and the canary that proves what was delivered.

The node-side relay records every packet before tshark sees it, and says when a canary is in the
recording (probes/capture_swap.py, marker `canary`). So a stream is *recording* as soon as the relay
has its first canary — tshark, which needs ~0.2 s of CPU to load its dissectors (six of them at once
on 2 busy cores: seconds), shows that canary and everything after it from the recording once it is up.
A later canary, sent after some traffic, proves delivery: when tshark shows it, every packet the node
recorded on that interface before it has been shown too (one relay, one tshark, in recording order).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.capture_ready import Canary, interpret_canary_send, send_each_argv
from labyrinth_tui.sources.base import StreamSpec
from labyrinth_tui.sources.capture_runs import Lines
from labyrinth_tui.sources.live_stream import LiveStream

# canaries go in rounds of 10, 0.1 s apart; a round stops as soon as the relay has recorded one (its
# sender looks for the relay's `<prefix>-canary-<mac>` file before each send), else ends by itself 1 s on
CANARY_ROUND: Final = 10
RESEND_AFTER: Final = 1.0  # s without the relay's word that a delivery canary is recorded: send another
# s the relay has to record the canary it sends itself before the app sends some over SSH: the stream's
# start (a round trip, python3, tcpdump) is in it, ~0.3 s here idle
RELAY_GRACE: Final = 2.0


async def _first(events: Sequence[asyncio.Event], timeout: float | None) -> None:
    """Until any of `events` is set, or `timeout` s."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        limit = None if timeout is None else max(timeout, 0.0)
        await asyncio.wait(waits, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _each(groups: Sequence[Sequence[asyncio.Event]], timeout: float) -> None:
    """Until every group has one of its events set, or `timeout` s."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(_first(g, None) for g in groups)), max(timeout, 0.0))


async def send_canaries(
    session: NodeSession,
    privilege: Sequence[str],
    interface: str,
    lines: Lines,
    closing: asyncio.Event,
    ready_timeout: float,
) -> None:
    """The relay sends the stream's canary itself the moment tcpdump listens (probes/capture_swap.py);
    when it has not recorded one after RELAY_GRACE s (a loaded node, a relay that could not send),
    rounds of canaries over SSH until it has (or `ready_timeout` s of rounds); then up to
    `ready_timeout` s more for tshark to show it (1 s when none was recorded). CanaryNotSent when the
    node cannot send one."""
    await _first([lines.recorded, lines.ready, lines.ended, closing], RELAY_GRACE)
    for _ in range(max(1, round(ready_timeout / (CANARY_ROUND * 0.1)))):
        if lines.recorded.is_set() or lines.ready.is_set() or lines.ended.is_set() or closing.is_set():
            break
        canary = lines.canary.send_argv(interface, CANARY_ROUND, 0.1, recorded_prefix=lines.prefix)
        sent = await session.run([*privilege, *canary], timeout=30, check=False)
        interpret_canary_send(interface, sent.exit_status, sent.stderr)
    wait = ready_timeout if lines.recorded.is_set() else 1.0
    await _first([lines.ready, lines.ended, closing], wait)


@dataclass(frozen=True, slots=True)
class Hop:
    """One live stream of a node, as a delivery check needs it."""

    interface: str
    lines: Lines
    closing: asyncio.Event


async def delivered(
    session: NodeSession, privilege: Sequence[str], hops: Sequence[Hop], timeout: float
) -> list[bool]:
    """For each hop of one node: True once tshark has shown a canary sent there now, so everything
    recorded on it before has been shown. One python3 over one SSH round trip sends them all (again
    after RESEND_AFTER s for those the relay has not recorded); False for a hop whose stream ended, or
    after `timeout` s."""
    canaries = [Canary.new() for _ in hops]
    events = [(asyncio.Event(), asyncio.Event()) for _ in hops]
    for hop, canary, watch in zip(hops, canaries, events, strict=True):
        hop.lines.watched[canary.src_mac] = watch
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def gone(i: int) -> bool:
        return hops[i].lines.ended.is_set() or hops[i].closing.is_set()

    try:
        while True:
            unsent = [
                i for i, (recorded, shown) in enumerate(events) if not (recorded.is_set() or shown.is_set())
            ]
            unsent = [i for i in unsent if not gone(i)]
            if not unsent or loop.time() >= deadline:
                break
            argv = send_each_argv([(hops[i].interface, canaries[i]) for i in unsent])
            try:
                await session.run([*privilege, *argv], timeout=30, check=False)
            except NodeError:
                break
            # until the relay has each of them (or its stream ended), else send those again
            groups = [[*events[i], hops[i].lines.ended, hops[i].closing] for i in unsent]
            await _each(groups, min(RESEND_AFTER, deadline - loop.time()))
        # then until tshark has shown each one
        shown_or_gone = [
            [shown, h.lines.ended, h.closing] for (_, shown), h in zip(events, hops, strict=True)
        ]
        await _each(shown_or_gone, deadline - loop.time())
        return [shown.is_set() for _, shown in events]
    finally:
        for hop, canary in zip(hops, canaries, strict=True):
            hop.lines.watched.pop(canary.src_mac, None)


async def delivered_on_nodes(
    streams: Sequence[LiveStream], timeout: float, shown: Callable[[LiveStream], None]
) -> dict[StreamSpec, bool]:
    """`delivered` for live streams on any nodes: one round trip per node, every node at once; `shown`
    is called with each stream as soon as its node's answer is in."""
    by_node: dict[tuple[NodeSession, tuple[str, ...]], list[LiveStream]] = {}
    for stream in streams:
        if stream.lines is not None:
            by_node.setdefault((stream.session, stream.privilege), []).append(stream)
    result: dict[StreamSpec, bool] = {}

    async def one_node(session: NodeSession, privilege: tuple[str, ...], group: list[LiveStream]) -> None:
        hops = [Hop(s.spec.interface, s.lines, s.closing) for s in group if s.lines is not None]
        for stream, done in zip(group, await delivered(session, privilege, hops, timeout), strict=True):
            result[stream.spec] = done
            shown(stream)

    await asyncio.gather(
        *(one_node(session, privilege, group) for (session, privilege), group in by_node.items())
    )
    return result
