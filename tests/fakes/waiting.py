"""Test helpers: wait on a condition (never a bare sleep), run in a netns."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.pilot import Pilot

# Fuzz cases per reader of untrusted input: 10k in CI (which sets CI=true), 1k on a developer's
# machine; LAB_FUZZ_EXAMPLES sets it either way.
FUZZ_EXAMPLES = int(os.environ.get("LAB_FUZZ_EXAMPLES") or (10_000 if os.environ.get("CI") else 1_000))


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)  # why: polling a condition that another process makes true


def in_netns(
    netns: str, *argv: str, check: bool = True, timeout: float = 10
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, check=check, timeout=timeout
    )


def listening(netns: str, port: int, udp: bool = False) -> bool:
    out = in_netns(netns, "ss", "-Hln" + ("u" if udp else "t"), f"sport = :{port}", check=False)
    return bool(out.stdout.strip())


def plain(content: object, width: int = 120) -> str:
    """What a Rich renderable (a Static's content) reads as, as plain text."""
    from rich.console import Console

    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(content)
    return console.export_text()


async def settle(pilot: Pilot[None], condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Let the app run (messages, timers, workers) until `condition` holds; fail saying `what` if it never
    does. The app's own 50 ms flush timer is why a single `pilot.pause()` is not always enough."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause()
