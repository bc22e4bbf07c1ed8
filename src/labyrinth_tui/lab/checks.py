"""Whether a lab is really there: its namespaces exist and its daemons run, in them."""

from __future__ import annotations

import os
from pathlib import Path

from labyrinth_tui.lab.host import zombie
from labyrinth_tui.lab.netns import list_netns, netns_path
from labyrinth_tui.lab.state import LabState


def problems(state: LabState) -> list[str]:
    """What of the lab `state` describes is not there: a netns gone, a sshd/dnsmasq dead or elsewhere."""
    present = set(list_netns())
    wanted = [f"{state.prefix}.vpc", *(n.netns for n in state.nodes), *(p.netns for p in state.pods)]
    found = [f"netns {name} is gone" for name in wanted if name not in present]
    dns_netns = next((p.netns for p in state.pods if p.name.startswith("coredns")), "")
    daemons = [
        ("dnsmasq", state.dns_pid, dns_netns),
        *(("sshd on " + n.name, n.sshd_pid, n.netns) for n in state.nodes),
    ]
    for what, pid, netns in daemons:
        if not is_ours(pid, state.state_dir):
            found.append(f"{what} (pid {pid}) is not running")
        elif netns not in present or not in_netns(pid, netns):
            found.append(f"{what} (pid {pid}) is not in netns {netns}")
    return found


def is_ours(pid: int, state_dir: str) -> bool:
    """pid is alive and is one of this lab's daemons: its command line names the lab's state dir."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if pid > 0 else []
    except OSError:
        return False
    mine = os.fsencode(state_dir.rstrip("/") + "/")
    return not zombie(pid) and any(mine in a for a in args)


def in_netns(pid: int, netns: str) -> bool:
    """pid runs in the named netns (same inode as /run/netns/<netns>)."""
    try:
        want, have = os.stat(netns_path(netns)), os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return False
    return (want.st_dev, want.st_ino) == (have.st_dev, have.st_ino)
