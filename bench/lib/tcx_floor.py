"""The kernel's floor under the eBPF lab's `up`: N tcx attach + detach of a trivial program, timed alone.

Why a floor: every tcx attach and detach swaps the device's program array and then waits for an RCU
grace period (kernel/bpf/tcx.c: tcx_entry_sync() is synchronize_rcu()) while holding the rtnl lock,
which is one lock for the whole machine. So N links cost N grace periods, one after another, whoever
asks and from however many threads or namespaces. Classic tc (clsact) filters free the old chain with
call_rcu() and do not wait. Everything here happens in scratch network namespaces of this process's
own (`<prefix>-<pid>-<i>`), on veths made there; none is the root namespace.
"""

from __future__ import annotations

import ctypes
import os
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from labyrinth_tui.lab.bpf import libbpf
from labyrinth_tui.lab.netns import entered

BPF_PROG_TYPE_SCHED_CLS = 3
# r0 = 0 (TCX_PASS / TC_ACT_OK); exit — struct bpf_insn is {u8 code, u8 regs, s16 off, s32 imm}
TRIVIAL = bytes([0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])


def trivial_program() -> int:
    """A two-instruction sched_cls program's fd (no clang: the instructions are written out above)."""
    lib = libbpf.lib()
    load = lib.bpf_prog_load
    load.restype = ctypes.c_int
    load.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    load.argtypes += [ctypes.c_void_p]
    return libbpf.check("bpf_prog_load", load(BPF_PROG_TYPE_SCHED_CLS, b"floor", b"GPL", TRIVIAL, 2, None))


def link_update(link_fd: int, prog_fd: int) -> None:
    """BPF_LINK_UPDATE: swap the program under an existing tcx link (replaced in place, no grace period)."""
    update = libbpf.lib().bpf_link_update
    update.restype, update.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    libbpf.check("bpf_link_update", update(link_fd, prog_fd, None))


@contextmanager
def scratch_netns(prefix: str, count: int, veths: int) -> Iterator[list[str]]:
    """`count` namespaces each holding `veths` veth pairs (f0a/f0b …, down); always deleted after."""
    names = [f"{prefix}-{os.getpid()}-{i}" for i in range(count)]
    made: list[str] = []
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True)
            made.append(name)
            batch = "".join(f"link add f{v}a type veth peer name f{v}b\n" for v in range(veths))
            subprocess.run(["ip", "-n", name, "-batch", "-"], input=batch, text=True, check=True)
        yield names
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)


def set_up(netns: str, veths: int, up: bool) -> None:
    batch = "".join(f"link set f{v}a {'up' if up else 'down'}\n" for v in range(veths))
    subprocess.run(["ip", "-n", netns, "-batch", "-"], input=batch, text=True, check=True)


def _tcx_round(
    netns: str, progs: list[int], devices: list[str], same_device: bool, socket_between: bool = False
) -> tuple[float, float]:
    """(attach, detach) seconds for one tcx ingress link per device, or all on the first device (multi-prog:
    then each link needs a program of its own, the kernel refuses one program twice on a hook).

    socket_between: a socket opened and closed before each attach (what if_nametoindex does): its release
    queues an RCU callback, whose grace period the next attach waits out before starting its own."""
    with entered(netns):
        indexes = [socket.if_nametoindex(devices[0] if same_device else d) for d in devices]
        fds = progs if same_device else progs[:1] * len(indexes)
        start = time.perf_counter()
        links = []
        for fd, i in zip(fds, indexes, strict=True):
            if socket_between:
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
            links.append(libbpf.link_create(fd, i, libbpf.BPF_TCX_INGRESS))
        attached = time.perf_counter()
        for fd in links:
            os.close(fd)  # the last reference: tcx_link_release, synchronously
        return attached - start, time.perf_counter() - attached


def _tc_round(netns: str, prog_fd: int, devices: list[str]) -> tuple[float, float]:
    with entered(netns):
        indexes = [socket.if_nametoindex(d) for d in devices]
        start = time.perf_counter()
        for i in indexes:
            libbpf.tc_attach(prog_fd, i, True)
        attached = time.perf_counter()
        for i in indexes:  # the clsact qdisc goes with its filters
            hook = libbpf.TcHook(
                ctypes.sizeof(libbpf.TcHook), i, libbpf.BPF_TC_INGRESS | libbpf.BPF_TC_EGRESS, 0
            )
            destroy = libbpf.lib().bpf_tc_hook_destroy
            destroy.restype, destroy.argtypes = ctypes.c_int, [ctypes.POINTER(libbpf.TcHook)]
            libbpf.check("bpf_tc_hook_destroy", destroy(ctypes.byref(hook)))
        return attached - start, time.perf_counter() - attached


def _update_round(netns: str, prog_fd: int, other_fd: int, devices: list[str]) -> float:
    """Seconds for N BPF_LINK_UPDATEs (BPF_F_REPLACE in place) on links made beforehand (not timed)."""
    with entered(netns):
        links = [
            libbpf.link_create(prog_fd, socket.if_nametoindex(d), libbpf.BPF_TCX_INGRESS) for d in devices
        ]
        try:
            start = time.perf_counter()
            for fd in links:
                link_update(fd, other_fd)
            return time.perf_counter() - start
        finally:
            for fd in links:
                os.close(fd)


def _parallel_round(by_ns: dict[str, list[str]], prog_fd: int) -> tuple[float, float]:
    """(attach, detach) wall seconds with one thread per namespace, all attaching, then all detaching."""
    ready, attached, go = (threading.Barrier(len(by_ns) + 1) for _ in range(3))

    def one(netns: str) -> None:
        with entered(netns):
            indexes = [socket.if_nametoindex(d) for d in by_ns[netns]]
            ready.wait()
            links = [libbpf.link_create(prog_fd, i, libbpf.BPF_TCX_INGRESS) for i in indexes]
            attached.wait()
            go.wait()
            for fd in links:
                os.close(fd)

    with ThreadPoolExecutor(max_workers=len(by_ns)) as pool:
        futures = [pool.submit(one, n) for n in by_ns]
        ready.wait()
        start = time.perf_counter()
        attached.wait()
        attach = time.perf_counter() - start
        go.wait()
        detach_start = time.perf_counter()
        for future in futures:
            future.result()
        return attach, time.perf_counter() - detach_start


@contextmanager
def serial_floor(prefix: str, links: int) -> Iterator[Callable[[], float]]:
    """A callable timing `links` serial tcx attaches (and their detaches, untimed) in a scratch netns kept
    for the caller's whole run: the floor taken again beside each `lab up`, under the same load."""
    prog_fd = trivial_program()
    try:
        with scratch_netns(prefix, 1, links) as (netns,):
            set_up(netns, links, True)
            devices = [f"f{v}a" for v in range(links)]
            yield lambda: _tcx_round(netns, [prog_fd], devices, False)[0]
    finally:
        os.close(prog_fd)


@dataclass(frozen=True)
class Floor:
    links: int
    figures: dict[str, tuple[float, float]]  # way → (attach s, detach s), medians

    def lines(self) -> list[str]:
        per = 1000 / self.links
        out = [f"tcx floor, {self.links} links of a trivial program in scratch netns (medians, ms/link):"]
        for way, (attach, detach) in self.figures.items():
            tail = f", detach {detach * per:.2f}" if detach else ""
            out.append(f"  {way:<40} attach {attach * per:6.2f}{tail}  (all {self.links}: {attach:.3f} s)")
        return out


def measure(prefix: str, links: int, rounds: int = 3, threads: int = 3) -> Floor:
    """Every way of attaching `links` tcx links tried `rounds` times, in scratch namespaces of `prefix`."""
    per_ns = -(-links // threads)
    progs = [trivial_program() for _ in range(links)]
    prog_fd, other_fd = progs[0], progs[1]
    results: dict[str, list[tuple[float, float]]] = {}

    def record(way: str, figure: tuple[float, float]) -> None:
        results.setdefault(way, []).append(figure)

    try:
        with scratch_netns(prefix, threads, per_ns) as names:
            devices = [f"f{v}a" for v in range(per_ns)]
            all_devices = [(names[i // per_ns], devices[i % per_ns]) for i in range(links)]
            with scratch_netns(prefix + "s", 1, links) as (single,):
                serial_devices = [f"f{v}a" for v in range(links)]
                for _ in range(rounds):
                    record("tcx serial, devices down", _tcx_round(single, progs, serial_devices, False))
                set_up(single, links, True)
                for _ in range(rounds):
                    record("tcx serial, devices up", _tcx_round(single, progs, serial_devices, False))
                    record(
                        "tcx serial, a socket closed before each",
                        _tcx_round(single, progs, serial_devices, False, socket_between=True),
                    )
                    record(
                        "tcx multi-prog, all on one device", _tcx_round(single, progs, serial_devices, True)
                    )
                    record("classic tc (clsact filter)", _tc_round(single, prog_fd, serial_devices))
                    update = _update_round(single, prog_fd, other_fd, serial_devices)
                    record("tcx BPF_LINK_UPDATE (F_REPLACE) only", (update, 0.0))
            for name in names:
                set_up(name, per_ns, True)
            by_ns = {n: [d for m, d in all_devices if m == n] for n in names}
            for _ in range(rounds):
                record(f"tcx from {threads} threads, one netns each", _parallel_round(by_ns, prog_fd))
    finally:
        for fd in progs:
            os.close(fd)
    medians = {
        way: (statistics.median(a for a, _ in figs), statistics.median(d for _, d in figs))
        for way, figs in results.items()
    }
    return Floor(links, medians)
