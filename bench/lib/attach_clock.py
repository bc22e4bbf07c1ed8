"""Where an eBPF `lab up` spends its time: each tcx attach timed from inside the bench's own process.

The bench calls `up()` in-process, so wrapping `libbpf.link_create` (what lab/bpf/datapath.py calls once
per link) times every attach without changing the lab: when the first starts (everything before it is
the rest of the lab coming up, while the programs load on a thread), how long the attaches take in the
kernel (one RCU grace period each under the rtnl lock), the gaps between them, and what `up` does after
the last.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from labyrinth_tui.lab.bpf import libbpf


@dataclass(frozen=True)
class Breakdown:
    before: float  # from `up` starting to the first attach starting: devices made, programs loaded
    in_kernel: float  # the attaches themselves (bpf_link_create)
    between: float  # from the first attach's start to the last's end, minus the attaches
    after: float  # from the last attach's end to `up` returning

    @property
    def total(self) -> float:
        return self.before + self.in_kernel + self.between + self.after


class AttachClock:
    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []

    def breakdown(self, started: float, ended: float) -> Breakdown:
        spans = [s for s in self.spans if started <= s[0] <= ended]
        if not spans:
            return Breakdown(ended - started, 0.0, 0.0, 0.0)
        in_kernel = sum(end - start for start, end in spans)
        chain = spans[-1][1] - spans[0][0]
        return Breakdown(spans[0][0] - started, in_kernel, chain - in_kernel, ended - spans[-1][1])


@contextmanager
def attach_clock() -> Iterator[AttachClock]:
    clock = AttachClock()
    real = libbpf.link_create

    def timed(prog_fd: int, ifindex: int, attach_type: int) -> int:
        start = time.perf_counter()
        try:
            return real(prog_fd, ifindex, attach_type)
        finally:
            clock.spans.append((start, time.perf_counter()))

    libbpf.link_create = timed
    try:
        yield clock
    finally:
        libbpf.link_create = real


def median_line(parts: list[Breakdown], links: int) -> str:
    """One line: the median of each part over the runs, in ms, with the attaches' per-link figure."""
    med = {
        name: statistics.median(getattr(p, name) for p in parts) * 1000
        for name in ("before", "in_kernel", "between", "after")
    }
    return (
        f"where ebpf (tcx) lab up goes, median of {len(parts)} (ms): the rest of the lab up before the first "
        f"attach "
        f"{med['before']:.0f}, {links} attaches in the kernel {med['in_kernel']:.0f} "
        f"({med['in_kernel'] / links:.1f}/link), between attaches {med['between']:.0f}, "
        f"after the last {med['after']:.0f}"
    )
