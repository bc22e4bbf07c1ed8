"""Where a namespace's time goes as namespaces pile up, and waiting for the kernel to free a removed lab's.

`netns_curve` makes `count` namespaces the way the lab makes its pods' (lab/netns.py add_netns) and
gives, per block of `block`, the ms each spent creating the /run/netns file, in unshare(CLONE_NEWNET),
writing sysctls and in the bind mount: once with no sysctl (what the lab does), once with the two
IPv6 ones the lab used to write per pod. The parts are the thread's CPU time (its syscalls' kernel
work included), which other work on the 2 shared cores barely moves; "wall" is the block's clock
time. Every namespace it made is removed before it returns.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labyrinth_tui.lab.netns import CLONE_NEWNET, MS_BIND, namespaces_held, netns_path, setns

IPV6_OFF = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
PARTS = ("file", "unshare", "sysctls", "mount")  # CPU ms each
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]


def _make(names: list[str], sysctls: dict[str, str], block: int) -> list[dict[str, float]]:
    """Make the namespaces from this thread; ms each per part, one dict per block."""
    blocks: list[dict[str, float]] = []
    spent = dict.fromkeys(PARTS, 0.0)
    wall = time.perf_counter()
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        for done, name in enumerate(names, 1):
            path = netns_path(name)
            t0 = time.thread_time()
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
            t1 = time.thread_time()
            if _libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"unshare for {name}")
            t2 = time.thread_time()
            try:
                for key, value in sysctls.items():
                    Path("/proc/sys", *key.split(".")).write_text(value)
                t3 = time.thread_time()
                if _libc.mount(b"/proc/thread-self/ns/net", bytes(path), None, MS_BIND, None) != 0:
                    raise OSError(ctypes.get_errno(), f"mount {path}")
                t4 = time.thread_time()
            finally:
                setns(home)
            for part, seconds in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                spent[part] += seconds
            if done % block == 0:
                blocks.append({part: seconds / block * 1000 for part, seconds in spent.items()})
                blocks[-1]["wall"] = (time.perf_counter() - wall) / block * 1000
                spent, wall = dict.fromkeys(PARTS, 0.0), time.perf_counter()
    finally:
        os.close(home)
    return blocks


def _remove(names: list[str]) -> None:
    """Unmount and remove every one of `names` that exists (a failed run's too)."""
    present = [n for n in names if netns_path(n).exists()]
    if present:
        script = "".join(f"netns del {n}\n" for n in present).encode()
        subprocess.run(["ip", "-force", "-batch", "-"], input=script, capture_output=True, check=False)


def netns_curve(prefix: str, count: int = 3000, block: int = 500) -> dict[str, list[dict[str, float]]]:
    """{"no sysctl": blocks, "IPv6 sysctls": blocks}: ms each per part and "wall", per block of namespaces."""
    # `ip netns add` once makes /run/netns the shared mount add_netns binds into
    first = f"{prefix}.nsbench-first"
    subprocess.run(["ip", "netns", "add", first], check=True)
    curves: dict[str, list[dict[str, float]]] = {}
    baseline = live_netns()
    try:
        for label, sysctls in (("no sysctl", {}), ("IPv6 sysctls", IPV6_OFF)):
            settle(baseline)  # the first curve's namespaces are freed before the second is timed
            names = [f"{prefix}.nsbench-{i}" for i in range(count)]
            try:
                # unshare and setns are per thread: the main thread never leaves its namespace
                with ThreadPoolExecutor(max_workers=1) as worker:
                    curves[label] = worker.submit(_make, names, sysctls, block).result()
            finally:
                _remove(names)
    finally:
        _remove([first])
    return curves


def live_netns() -> int:
    """Network namespaces the kernel holds (in use or not yet freed): the net_namespace slab's objects."""
    return namespaces_held() or 0


def settle(baseline: int, slack: int = 50, timeout: float = 30.0) -> float:
    """Wait until the kernel has freed a removed lab's namespaces (its cleanup runs after `down` returns
    and contends with the next `up` for the rtnl lock); seconds waited. Other labs on the machine come
    and go, so `slack` namespaces over `baseline` count as settled, and `timeout` ends the wait."""
    start = time.perf_counter()
    while live_netns() > baseline + slack and time.perf_counter() - start < timeout:
        time.sleep(0.2)  # the kernel frees them in its own workqueue: nothing to wait on but the count
    return time.perf_counter() - start
