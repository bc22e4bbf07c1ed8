"""The viewers' apps share a capped slice of the CPU (a cgroup), so the presenter's app keeps its cores.

Why a cgroup and not only SCHED_IDLE: on this machine's kernel (6.18, 2 cores) a SCHED_IDLE task still
takes CPU from a runnable normal one. Measured with a spinning loop (`python3 -c 'while 1: pass'`-like,
5 s each): a normal spinner got 0.86–1.22 s alone, 0.33 s beside 20 SCHED_IDLE spinners (who got
1.16 s); beside the same 20 in a cpu cgroup with cpu.shares=2 and a quota of 25 % of a core it got
2.78 s (they got 1.06 s, their quota). `bench/serve_viewers.py` showed the same on the app: the
presenter's app ran 0.09–0.12 core with 20 SCHED_IDLE viewers beside it, 0.44–0.72 alone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

VIEWERS_CPU = 0.5  # cores all viewers' apps may use together; the presenter and the server keep the rest
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


class ViewerCpu:
    """One cgroup per `labyrinth serve` (its pid in the name), made at start and removed at close."""

    def __init__(self, cores: float = VIEWERS_CPU) -> None:
        self.cores = cores
        self.path: Path | None = None

    def make(self) -> Path | None:
        """The cgroup's folder, or None when this machine gives us none (not root, no cpu controller):
        then the viewers rely on SCHED_IDLE alone."""
        quota = int(self.cores * PERIOD_US)
        v2 = (V2 / "cgroup.controllers").exists()
        path = (V2 if v2 else V1) / f"labyrinth-serve-viewers-{os.getpid()}"
        try:
            path.mkdir(exist_ok=True)
            if v2:
                (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
                (path / "cpu.weight").write_text("25")  # a quarter of a normal process
            else:
                (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (path / "cpu.cfs_quota_us").write_text(str(quota))
                (path / "cpu.shares").write_text(
                    "256"
                )  # a quarter of a normal process: they start under load
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        self.path = path
        return path

    def remove(self) -> None:
        """After every viewer's app has ended (a cgroup with a process in it cannot be removed)."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()
            self.path = None


def join(path: str) -> bool:
    """Called by a viewer's own process, first thing: it and the threads it starts run in the cgroup."""
    try:
        Path(path, "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return False
    return True
