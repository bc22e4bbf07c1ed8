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
from collections.abc import Sequence
from typing import Final

from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.capture_ready import Canary, CanaryNotSent, interpret_canary_send
from labyrinth_tui.sources.capture_runs import Lines

# canaries go in rounds of 10, 0.1 s apart; a round stops as soon as the relay has recorded one (its
# sender looks for the relay's `<prefix>-canary-<mac>` file before each send), else ends by itself 1 s on
CANARY_ROUND: Final = 10
RESEND_AFTER: Final = 1.0  # s without the relay's word that a delivery canary is recorded: send another


async def _first(events: Sequence[asyncio.Event], timeout: float) -> None:
    """Until any of `events` is set, or `timeout` s."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def send_canaries(
    session: NodeSession,
    privilege: Sequence[str],
    interface: str,
    lines: Lines,
    closing: asyncio.Event,
    ready_timeout: float,
) -> None:
    """Rounds of canaries until the relay has recorded one (or `ready_timeout` s of rounds); then up to
    `ready_timeout` s more for tshark to show it (1 s when none was recorded). CanaryNotSent when the
    node cannot send one."""
    for _ in range(max(1, round(ready_timeout / (CANARY_ROUND * 0.1)))):
        if lines.recorded.is_set() or lines.ready.is_set() or lines.ended.is_set() or closing.is_set():
            break
        canary = lines.canary.send_argv(interface, CANARY_ROUND, 0.1, recorded_prefix=lines.prefix)
        sent = await session.run([*privilege, *canary], timeout=30, check=False)
        interpret_canary_send(interface, sent.exit_status, sent.stderr)
    wait = ready_timeout if lines.recorded.is_set() else 1.0
    await _first([lines.ready, lines.ended, closing], wait)


async def delivered(
    session: NodeSession,
    privilege: Sequence[str],
    interface: str,
    lines: Lines,
    closing: asyncio.Event,
    timeout: float,
) -> bool:
    """True once tshark has shown a canary sent now on `interface`: everything recorded there before
    it has been shown. False when the stream ended, the canary could not be sent, or after `timeout` s."""
    canary = Canary.new()
    recorded, shown = asyncio.Event(), asyncio.Event()
    lines.watched[canary.src_mac] = (recorded, shown)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not recorded.is_set() and not shown.is_set():
            if lines.ended.is_set() or closing.is_set() or loop.time() >= deadline:
                return False
            argv = canary.send_argv(interface, 1, 0.0)
            try:
                sent = await session.run([*privilege, *argv], timeout=30, check=False)
                interpret_canary_send(interface, sent.exit_status, sent.stderr)
            except (NodeError, CanaryNotSent):
                return False
            await _first([recorded, shown, lines.ended, closing], min(RESEND_AFTER, deadline - loop.time()))
        await _first([shown, lines.ended, closing], deadline - loop.time())
        return shown.is_set()
    finally:
        lines.watched.pop(canary.src_mac, None)
