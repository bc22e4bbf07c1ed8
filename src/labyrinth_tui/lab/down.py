"""Finding and removing a lab: its leftovers by prefix and mark, `down`, orphan capture folders, status."""

from __future__ import annotations

import contextlib
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labyrinth_tui.lab.bpf import datapath
from labyrinth_tui.lab.checks import is_ours
from labyrinth_tui.lab.host import end_processes, ip_batch, require_root
from labyrinth_tui.lab.netns import list_netns, pids_in
from labyrinth_tui.lab.owned import (
    capture_workdir_pattern,
    locked,
    marked,
    orphan_run_roots,
    remove_inside,
    unmark,
)
from labyrinth_tui.lab.state import ETC_NETNS, RUN_DIR, TMP_DIR, LabError, LabState, load_state, state_dir


def leftovers(prefix: str) -> dict[str, list[str]]:
    """Everything on this machine that the lab with this prefix made: what carries its mark.

    A netns merely named like the lab (`<prefix>.foo`, made by hand) is listed as `not_ours`
    and never touched.
    """
    owned = f"{state_dir(prefix).name}."
    mine = set(marked(prefix))
    named = [n for n in list_netns() if n.startswith(owned)]
    etc = sorted(ETC_NETNS / n for n in mine if (ETC_NETNS / n).exists())
    found = {
        "netns": [n for n in named if n in mine],
        "not_ours": [n for n in named if n not in mine],
        "etc_netns": [str(p) for p in etc],
        "bpffs": datapath.leftovers(prefix),
        "state": [str(state_dir(prefix))] if state_dir(prefix).exists() else [],
        "marks": sorted(mine),
    }
    found["processes"] = [str(pid) for pids in pids_in(found["netns"]).values() for pid in pids]
    return {k: v for k, v in found.items() if v}


def down(prefix: str) -> dict[str, list[str]]:
    """Remove every netns, process, /etc/netns entry and state file of the lab; return what was removed."""
    require_root()
    with locked(prefix):
        return down_unlocked(prefix)


def _stray_daemons(prefix: str) -> list[int]:
    """The state's sshd/dnsmasq still running though their netns was deleted by someone else.

    Checked to be ours (their command line names the lab's state dir) before anything is ended.
    """
    try:
        state = load_state(prefix)
    except LabError:
        return []
    if state is None:
        return []
    pids = [state.dns_pid, *(n.sshd_pid for n in state.nodes)]
    return [pid for pid in pids if is_ours(pid, state.state_dir)]


def down_unlocked(prefix: str) -> dict[str, list[str]]:
    """`down` for a caller that already holds the lab's lock (`up` clearing leftovers)."""
    found = leftovers(prefix)
    netns = found.get("netns", [])
    in_netns = [int(p) for p in found.get("processes", [])]
    strays = [pid for pid in _stray_daemons(prefix) if pid not in in_netns]
    if strays:
        found["stray_daemons"] = [str(pid) for pid in strays]
    workdirs = _capture_workdirs(in_netns)
    end_processes(in_netns + strays)
    # a second look: a process may have been starting while we looked the first time
    end_processes([pid for pids in pids_in(netns).values() for pid in pids])
    proc = ip_batch([f"netns del {name}" for name in netns]) if netns else None
    # while `ip` deletes the namespaces (no process is left to have their /etc/netns files mounted), and
    # side by side: an rmdir here waits ~2 ms on the disk, and a pod has one folder (3000 pods: 8 s → 0.4 s)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda path: remove_inside(path, ETC_NETNS), found.get("etc_netns", [])))
    if proc is not None:
        assert proc.stderr is not None
        err = proc.stderr.read().decode().strip()
        if proc.wait() != 0 and any(n in list_netns() for n in netns):
            raise LabError(f"could not delete every namespace: {err}")
    # after the namespaces: with the pins gone the kernel frees the lab's links, programs and maps
    datapath.down(prefix)
    for workdir in workdirs:
        # a capture's folder on a lab node is on this machine's /tmp; its own watcher was just ended
        remove_inside(workdir, TMP_DIR)
    workdirs |= set(sweep_orphans(prefix, min_age=0.0))
    if workdirs:
        found["capture_dirs"] = sorted(workdirs)
    remove_inside(state_dir(prefix), RUN_DIR)
    unmark(prefix, found.pop("marks", []))
    # the lock file stays: see owned.locked
    return found


CAPTURE_WORKDIR = re.compile(r"^/tmp/labyrinth-cap-(?:[a-z][a-z0-9-]{0,15}-)?[0-9a-f]{12}$")


def orphan_capture_dirs(prefix: str, min_age: float = 10.0, tmp: Path = TMP_DIR) -> set[str]:
    """Lab `prefix`'s capture folders in `tmp` that no process names any more, older than `min_age` s.

    Lab nodes share this machine's /tmp. An app killed between ending a capture and removing its
    folder leaves one that no watcher names; `down` removes those too — its own lab's only (the
    folder's name carries the prefix). A folder just made (its capture not started yet) is younger
    than `min_age` and is left alone.
    """
    mine = capture_workdir_pattern(prefix)
    candidates = {str(p) for p in tmp.glob(f"labyrinth-cap-{prefix}-*") if mine.fullmatch(str(p))}
    if not candidates:
        return set()
    named: set[str] = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        for arg in args:
            text = arg.decode(errors="replace")
            named |= {c for c in candidates if text == c or text.startswith(c + "/")}
    now = time.time()
    orphans = set()
    for path in candidates - named:
        with contextlib.suppress(OSError):
            if now - os.lstat(path).st_mtime >= min_age:
                orphans.add(path)
    return orphans


def sweep_orphans(prefix: str, min_age: float = 10.0) -> list[str]:
    """Remove lab `prefix`'s own leftover temporary folders (a killed app's or record's); return them.

    `min_age` spares a capture folder just made for a capture still starting (the app at start);
    `down` passes 0: every process of the lab has been ended, so any folder of its own is left over.
    """
    swept = sorted(orphan_capture_dirs(prefix, min_age=min_age) | orphan_run_roots(prefix))
    return [path for path in swept if remove_inside(path, TMP_DIR)]


def _capture_workdirs(pids: list[int]) -> set[str]:
    """The capture folders named on the command lines of the lab's processes (CaptureStreams' watchers)."""
    found = set()
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        found |= {a.decode() for a in args if CAPTURE_WORKDIR.match(a.decode(errors="replace"))}
    return found


def status(prefix: str) -> tuple[LabState | None, dict[str, list[str]]]:
    """The lab's state if it is up, and whatever of it exists on the machine."""
    state = load_state(prefix) if state_dir(prefix).exists() else None
    return state, leftovers(prefix)
