"""What every bench ends with: each goal beside our figure and the anchor's, and exit status 1 on a miss.

`make bench` runs `bench/[!_]*.py` one after another and stops at the first non-zero exit, naming it;
before each it runs this file, which waits for a quiet machine (`wait_quiet`: the bench before may have
left the kernel freeing hundreds of namespaces). A bench whose figures depend on an idle machine
prints the load average it ran under (`load_line`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

QUIET_BUSY = 0.2  # the machine's CPUs at most this busy…
QUIET_SECONDS = 3  # …this many 1-second windows in a row


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over every CPU, from /proc/stat's first line."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def _uninterruptible() -> int:
    """Tasks in uninterruptible sleep now (state D in /proc/PID/stat): what the load average counts
    beside the running ones. /proc/stat's procs_blocked counts only those waiting on I/O."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                count += f.read().rsplit(b")", 1)[1].split()[0] == b"D"
        except (OSError, IndexError):
            continue  # gone meanwhile
    return count


def wait_quiet(limit: float = 90.0) -> str:
    """Wait (at most `limit` s) for a quiet machine: what a trial that needs an idle machine does first.

    After a bench that builds and deletes hundreds of namespaces the kernel goes on freeing them for a
    while (the load average read 28 on 2 cores after bench/attach_scale.py); a trial started then
    measures that cleanup, not us. Its workers may wait rather than run (on RCU grace periods, on the
    rtnl lock), as tasks in uninterruptible sleep (state D), so quiet means both: the CPUs idle and no
    task in D. Not the load average: it is a decaying mean of the last minutes (37 on 2 cores right
    after that bench, mostly the bench's own work). Returns a line saying
    how long it waited and what it found.
    """
    start, quiet = time.monotonic(), 0
    busy_share, blocked = 1.0, 0
    while quiet < QUIET_SECONDS and time.monotonic() - start < limit:
        busy0, total0 = _cpu_times()
        blocked0 = _uninterruptible()
        time.sleep(1.0)
        busy1, total1 = _cpu_times()
        blocked = _uninterruptible()
        busy_share = (busy1 - busy0) / max(1, total1 - total0)
        quiet = quiet + 1 if busy_share <= QUIET_BUSY and blocked0 == blocked == 0 else 0
    waited = time.monotonic() - start
    state = "quiet" if quiet >= QUIET_SECONDS else f"still busy after {limit:.0f} s"
    found = f"{busy_share:.0%} of the CPUs busy, {blocked} tasks in uninterruptible sleep"
    return f"settled: {state} ({found}), waited {waited:.0f} s; {load_line()}"


def load_line() -> str:
    """The 1/5/15-minute load averages and the core count: a figure taken on a busy machine says so."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


@dataclass
class Verdict:
    """Collects goals as a bench checks them; `status()` prints the summary line and gives the exit code."""

    bench: str
    missed: list[str] = field(default_factory=list)
    checked: int = 0

    def goal(self, what: str, ours: str, anchor: str, goal: str, met: bool) -> bool:
        """One goal: our figure, the anchor's in the same run ("" when the goal has none), the goal."""
        self.checked += 1
        beside = f"   anchor {anchor}" if anchor else ""
        print(f"goal  {what:<44} ours {ours}{beside}   goal {goal}   {'met' if met else 'MISSED'}")
        if not met:
            self.missed.append(what)
        return met

    def status(self) -> int:
        """0 when every goal was met, else 1 (after saying which were missed)."""
        if self.missed:
            print(
                f"{self.bench}: MISSED {len(self.missed)} of {self.checked} goals: {'; '.join(self.missed)}"
            )
            return 1
        print(f"{self.bench}: all {self.checked} goals met")
        return 0


if __name__ == "__main__":
    # `make bench` runs this before each bench: every bench starts on a quiet machine, and says so
    print(wait_quiet())
