"""What building and removing a lab both use on this machine: root, `ip -batch`, ending processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence

from labyrinth_tui.lab.state import LabError


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab creates network namespaces and needs root: run `sudo labyrinth lab up` "
            "(or `make run`, which uses sudo when needed)"
        )


def ip_batch(lines: Sequence[str], *, netns: str | None = None, tool: str = "ip") -> subprocess.Popen[bytes]:
    """Start `tool -batch -` (in `netns`) fed `lines`; wait_all collects it."""
    argv = [tool, *(["-n", netns] if netns else []), "-batch", "-"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(("\n".join(lines) + "\n").encode())
    proc.stdin.close()
    return proc


def wait_all(procs: Sequence[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """Wait for every batch; one LabError naming each that failed, with its stderr."""
    errors = []
    for what, proc in procs:
        assert proc.stderr is not None
        err = proc.stderr.read().decode().strip()
        if proc.wait() != 0:
            errors.append(f"{what}: {err or f'exit {proc.returncode}'}")
    if errors:
        raise LabError("building the lab failed: " + "; ".join(errors))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return pid > 0


def end_processes(pids: list[int]) -> None:
    """TERM, then KILL what is still there after a short grace. Only PIDs found in our namespaces."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 1.0
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        remaining = [pid for pid in remaining if _reap_or_alive(pid)]
        if remaining:
            time.sleep(0.01)  # processes are exiting after TERM
    for pid in remaining:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _reap_or_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return _alive(pid) and not zombie(pid)


def zombie(pid: int) -> bool:
    """pid is a zombie, or gone (its /proc entry cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
