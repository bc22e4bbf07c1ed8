"""Discovery of the lab's full tree with 3 nodes × 100 pods over SSH, beside the article's by-hand way.

Goals (issues 4, 17): 3 × 100 pods full tree < 1 s, 3 × 1000 pods ≤ 3 s; SSH round trips per node do
not grow with the number of pods (the by-hand anchor is run up to 3 × 100 pods only: minutes beyond).
Anchor, same run, same sessions: the article's method — per node `ip netns list` and `ip -d link`,
then per pod netns `ip -n NS addr` and `ip -n NS route` — one round trip per command.
Run as root: `.venv/bin/python bench/discovery_scale.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from lib.goals import Verdict, load_line

from labyrinth_tui.lab.down import down
from labyrinth_tui.lab.spec import article_spec
from labyrinth_tui.lab.up import up
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.sources.lab_nodes import discover_lab, sessions_for


class Counted:
    """Counts round trips (run calls) of a session."""

    def __init__(self, session: NodeSession) -> None:
        self.session = session
        self.calls = 0

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def address(self) -> str:
        return self.session.address

    async def run(self, argv: Sequence[str], **kwargs: Any) -> Any:
        self.calls += 1
        return await self.session.run(argv, **kwargs)

    async def close(self) -> None:
        await self.session.close()


async def by_hand(session: Counted, pod_netns: list[str]) -> None:
    await session.run(["ip", "netns", "list"])
    await session.run(["ip", "-d", "link", "show"])
    for ns in pod_netns:
        await session.run(["ip", "-n", ns, "addr"])
        await session.run(["ip", "-n", ns, "route"])


async def measure(
    prefix: str, per_node: int, by_hand_too: bool
) -> tuple[float, float, dict[str, int], dict[str, int], int]:
    # iptables: discovery reads links and routes whatever the datapath, and the eBPF one's down waits on
    # the kernel freeing its objects (seconds on a busy machine) between the sizes
    spec = article_spec(prefix=prefix, pods_per_node=per_node, datapath="iptables")
    down(prefix)
    state = up(spec)
    sessions = {k: Counted(v) for k, v in sessions_for(state).items()}
    try:
        for s in sessions.values():
            await s.session.connect()
        start = time.perf_counter()
        topology = await discover_lab(state, sessions)  # type: ignore[arg-type]
        ours = time.perf_counter() - start
        ours_calls = {k: s.calls for k, s in sessions.items()}
        pods = sum(len(n.pods) for n in topology.nodes)
        for s in sessions.values():
            s.calls = 0
        if not by_hand_too:  # 1000s of round trips: minutes, and nothing new to learn
            return ours, float("nan"), ours_calls, {k: 0 for k in sessions}, pods
        start = time.perf_counter()
        await asyncio.gather(
            *(by_hand(s, [p.netns for p in state.pods if p.node == name]) for name, s in sessions.items())
        )
        anchor = time.perf_counter() - start
        anchor_calls = {k: s.calls for k, s in sessions.items()}
        return ours, anchor, ours_calls, anchor_calls, pods
    finally:
        await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)
        down(prefix)


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--prefix", default="benchdisc", help="the lab's prefix (unique on a shared machine)")
    prefix = args.parse_args().prefix
    if os.geteuid() != 0:
        print("bench/discovery_scale.py needs root (it builds the lab)", file=sys.stderr)
        return 1
    trips = "round trips/node"
    print(f"{'lab':<22} {'ours':>8} {trips:>17} {'by hand':>9} {trips:>17} {'ratio':>7}")
    results = []
    for per_node in (0, 100, 1000):
        ours, anchor, oc, ac, pods = asyncio.run(measure(prefix, per_node, by_hand_too=per_node <= 100))
        label = f"3 nodes, {pods} pods"
        row = f"{label:<22} {ours:7.3f}s {max(oc.values()):>17} {anchor:8.3f}s {max(ac.values()):>17}"
        print(f"{row} {anchor / ours:6.1f}×")
        results.append((ours, oc, anchor, max(ac.values())))
    small, mid, large = results
    print(load_line())
    verdict = Verdict("bench/discovery_scale.py")
    verdict.goal("3 × 100 pods, full tree", f"{mid[0]:.3f} s", f"{mid[2]:.3f} s", "< 1 s", mid[0] < 1)
    verdict.goal("3 × 1000 pods, full tree", f"{large[0]:.3f} s", "", "≤ 3 s", large[0] <= 3)
    trips = max(large[1].values())
    flat = trips == max(small[1].values())
    verdict.goal("round trips per node, 0 → 1000 pods", str(trips), str(mid[3]), "flat", flat)
    return verdict.status()


if __name__ == "__main__":
    sys.exit(main())
