"""Helpers for named network namespaces: enter one in this thread, list them, find their processes."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000
MS_BIND = 4096
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2) for this thread (os.setns arrives only in Python 3.12)."""
    if _libc.setns(fd, nstype) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with THIS thread inside netns `name`; always come back. Use from a worker thread."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns_path(name), os.O_RDONLY)
    try:
        setns(target)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(target)
        os.close(home)


@contextlib.contextmanager
def visiting(names: Iterable[str]) -> Iterator[Callable[[str], None]]:
    """Like `entered`, for going from namespace to namespace in this thread: every namespace's file is opened
    before the body and closed after it, and `enter(name)` only calls setns.

    Why: an nsfs file's last close frees its dentry with call_rcu(), and a callback queued just before a
    synchronize_rcu() (each tcx attach makes one) starts a grace period that the synchronize then waits
    out before its own: the first attach in each node took 16 ms instead of 8 with `entered` per node.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    fds: dict[str, int] = {}
    try:
        for name in names:
            fds[name] = os.open(netns_path(name), os.O_RDONLY)
        try:
            yield lambda name: setns(fds[name])
        finally:
            setns(home)
    finally:
        for fd in fds.values():
            os.close(fd)
        os.close(home)


def add_netns(name: str, sysctls: dict[str, str] | None = None) -> None:
    """Named netns `name` as `ip netns add` makes it (the namespace bind-mounted on /run/netns/NAME), with
    its net.* `sysctls` written if any, from this thread and no process. /run/netns must already be the
    shared mount `ip netns add` makes (add one namespace with `ip` first).

    Why not `ip netns add`: it runs `mount --make-rshared /run/netns` for every namespace, a walk of
    every mount under it, so N namespaces cost O(N²): 3000 took 3.4 s, 1.1 ms each and growing, where
    this stays flat: 0.4–0.6 ms of CPU each (create the file, unshare, mount) up to 3000 namespaces.
    Sysctls are not flat: each /proc/sys/net write grows with the number of live namespaces that
    looked the path up (pods keep IPv6 quiet over netlink instead: lab/netlink.py); see both with
    `bench/lab_scale.py --netns-only`. Call it from a worker thread (unshare and setns are per
    thread); one is enough: mounts take one kernel lock, and 8 threads took longer than one."""
    path = netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _check(_libc.unshare(CLONE_NEWNET), f"a network namespace for {name}")
        try:
            for key, value in (sysctls or {}).items():
                Path("/proc/sys", *key.split(".")).write_text(value)
            _check(
                _libc.mount(b"/proc/thread-self/ns/net", bytes(path), None, MS_BIND, None), f"mount {path}"
            )
        finally:
            setns(home)
    except OSError:
        path.unlink(missing_ok=True)
        raise
    finally:
        os.close(home)


def write_sysctls(name: str, values: dict[str, str]) -> None:
    """Write net.* sysctls of netns `name` (/proc/sys/net follows the writing thread's namespace)."""
    with entered(name):
        for key, value in values.items():
            Path("/proc/sys", *key.split(".")).write_text(value)


def pids_in(names: Iterable[str]) -> dict[str, list[int]]:
    """Processes whose network namespace is one of `names` (what `ip netns pids` does, for many at once)."""
    wanted: dict[tuple[int, int], str] = {}
    for name in names:
        try:
            st = os.stat(netns_path(name))
        except FileNotFoundError:
            continue
        wanted[(st.st_dev, st.st_ino)] = name
    found: dict[str, list[int]] = {name: [] for name in wanted.values()}
    if not wanted:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue  # gone, or a kernel thread
        owner = wanted.get((st.st_dev, st.st_ino))
        if owner is not None:
            found[owner].append(int(entry.name))
    return found


def own_hostname(name: str) -> None:
    """Give this process a UTS namespace of its own named `name` (a node's or pod's hostname)."""
    raw = name.encode()
    if _libc.unshare(CLONE_NEWUTS) != 0 or _libc.sethostname(raw, len(raw)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"hostname {name}: {os.strerror(errno)}")


def namespaces_held() -> int | None:
    """Network namespaces the kernel holds, in use or not yet freed: /proc/slabinfo's net_namespace
    objects (root only; None where it cannot be read). `grep net_namespace /proc/slabinfo` shows it."""
    try:
        with open("/proc/slabinfo", encoding="ascii") as slabs:
            for line in slabs:
                if line.startswith("net_namespace "):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
