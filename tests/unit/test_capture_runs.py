"""The hand-off between two tshark runs of one stream: every packet once, numbered like the recording."""

from __future__ import annotations

import subprocess

import pytest

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.commands import UnsafeArgument, ended_with_reader, in_process_group
from labyrinth_tui.probes.capture_parse import SummaryParser
from labyrinth_tui.probes.capture_ready import CANARY_DST, Canary
from labyrinth_tui.sources.capture_runs import Run, release, take


def line(ts: float, number: int, ip_id: int) -> str:
    """A datagram as tshark prints it with our columns."""
    cols = [f"{ts:.9f}", str(number), "60", "10.0.1.15", "4000", "10.0.2.215", "9", "UDP"]
    return "\t".join([*cols, "", "", "", f"0x{ip_id:04x}", "", "", "", "", "4000 → 9 Len=10"])


def canary_line(ts: float, number: int, canary: Canary) -> str:
    cols = [f"{ts:.9f}", str(number), "60", canary.src_mac, "", CANARY_DST, "", "0x88b5"]
    return "\t".join([*cols, "", "", "", "", "", "", "", "", "Ethernet II"])


def run(index: int, previous: Run | None = None) -> Run:
    r = Run(index, f"/tmp/labyrinth-x/run-{index}.pcapng", Canary.new(), SummaryParser("node-1", "lxc1"))
    r.ready.set() if previous is None else None
    r.holding = previous is not None
    r.previous = previous
    if previous is None:
        r.warm.set()
    else:  # as CaptureStreams starts a hand-off run: a warm-up canary, then the one that cuts
        r.warmup = Canary.new()
        r.warm.set()  # the cases below start after the warm-up; see the warm-up test
    return r


def frames(run_lines: list[tuple[float, int | Canary]]) -> list[str]:
    """Lines numbered 1, 2, … as one tshark run would number them."""
    return [
        canary_line(ts, n, what) if isinstance(what, Canary) else line(ts, n, what)
        for n, (ts, what) in enumerate(run_lines, start=1)
    ]


@pytest.mark.parametrize("old_lags", [False, True])
def test_every_packet_once_and_numbered_as_in_the_joined_recording(old_lags: bool) -> None:
    old = run(0)
    new = run(1, previous=old)
    old.handoff_mac = new.canary.src_mac
    # datagrams 1..10 at t=1..10; the new run's canaries at 4.5 (before it captures) and 5.5 (its first)
    seen_by_old = [*((float(i), i) for i in range(1, 5)), (4.5, new.canary), (5.0, 5), (5.5, new.canary)]
    seen_by_old += [(float(i), i) for i in range(6, 11)]
    seen_by_new = [(5.0, 5), (5.5, new.canary), *((float(i), i) for i in range(6, 11))]
    old_lines, new_lines = frames(seen_by_old), frames(seen_by_new)
    pending: list[PacketSummary] = []
    if old_lags:  # the new run is ready before the old one read anything of the hand-off
        take(old, pending, old_lines[:3])
        take(new, pending, new_lines[:4])
        take(old, pending, old_lines[3:])
    else:  # the old run already passed the new canaries: it keeps what follows until the cut is known
        take(old, pending, old_lines[:8])
        assert old.deferring and [p.ip_id for p in pending] == [1, 2, 3, 4]
        take(new, pending, new_lines[:4])
        take(old, pending, old_lines[8:])
    assert new.ready.is_set() and old.handed.is_set()
    assert (old.first, old.last, new.first) == (1, 6, 3)  # old keeps frames 1-6, new from frame 3
    release(new, pending, next_number=old.last - old.first + 1)
    take(new, pending, new_lines[4:])
    assert [p.ip_id for p in pending] == list(range(1, 11))
    # the recording joins old frames 1-6 and new frames 3-: frame N is packet N
    joined = [*seen_by_old[:6], *seen_by_new[2:]]
    assert all(joined[p.number - 1][1] == p.ip_id for p in pending)


def test_holes_in_the_new_run_before_it_is_warm_lose_nothing() -> None:
    """Its tshark reads nothing for ~1 s at first, so its kernel ring may drop: the cut comes after."""
    old = run(0)
    new = run(1, previous=old)
    new.warm.clear()
    assert new.warmup is not None
    old.handoff_mac = new.canary.src_mac
    warm, cut = new.warmup, new.canary
    seen_by_old = [(float(i), i) for i in range(1, 4)] + [(3.2, warm)]
    seen_by_old += [(float(i), i) for i in range(4, 7)] + [(6.5, cut)]
    seen_by_old += [(float(i), i) for i in range(7, 11)]
    # the new run lost datagrams 4 and 5 (its ring overflowed) after its warm-up canary
    seen_by_new = [(2.0, 2), (3.0, 3), (3.2, warm), (6.0, 6), (6.5, cut)]
    seen_by_new += [(float(i), i) for i in range(7, 11)]
    old_lines, new_lines = frames(seen_by_old), frames(seen_by_new)
    pending: list[PacketSummary] = []
    take(new, pending, new_lines[:3])
    assert new.warm.is_set() and not new.ready.is_set()  # warm: its tshark reads; no cut yet
    take(old, pending, old_lines)
    take(new, pending, new_lines[3:5])
    assert new.ready.is_set() and old.handed.is_set()
    release(new, pending, next_number=old.last - old.first + 1)
    take(new, pending, new_lines[5:])
    assert [p.ip_id for p in pending] == list(range(1, 11))


@pytest.mark.parametrize("old_lags", [False, True])
def test_packets_stamped_like_the_cut_canary_are_counted_once(old_lags: bool) -> None:
    """Microsecond stamps tie at 20k packets/s: the canary's own position decides, not its time."""
    old = run(0)
    new = run(1, previous=old)
    old.handoff_mac = new.canary.src_mac
    # datagram 3 shares the canary's stamp but came before it; datagram 4 shares it and came after
    both = [(3.0, 3), (3.0, new.canary), (3.0, 4), (4.0, 5), (5.0, 6)]
    old_lines, new_lines = frames([(1.0, 1), (2.0, 2), *both]), frames(both)
    pending: list[PacketSummary] = []
    if old_lags:
        take(old, pending, old_lines[:2])
        take(new, pending, new_lines[:2])
        take(old, pending, old_lines[2:])
    else:
        take(old, pending, old_lines)
        take(new, pending, new_lines[:2])
    assert new.ready.is_set() and old.handed.is_set()
    release(new, pending, next_number=old.last - old.first + 1)
    take(new, pending, new_lines[2:])
    assert [p.ip_id for p in pending] == [1, 2, 3, 4, 5, 6]


def test_an_own_canary_before_the_warm_up_does_not_cut() -> None:
    old = run(0)
    new = run(1, previous=old)
    new.warm.clear()
    pending: list[PacketSummary] = []
    take(new, pending, frames([(1.0, new.canary), (1.5, 2)]))
    assert not new.ready.is_set() and old.cut is None and pending == []


def test_lines_before_the_new_runs_canary_are_the_old_runs() -> None:
    old = run(0)
    new = run(1, previous=old)
    pending: list[PacketSummary] = []
    take(new, pending, frames([(5.0, 5), (5.2, 6)]))
    assert pending == [] and not new.ready.is_set()


def test_the_reader_watch_wraps_a_command_and_refuses_foreign_directories() -> None:
    argv = ended_with_reader(["tshark", "-i", "eth0"], workdir="/tmp/labyrinth-cap-0a1b")
    assert argv[:2] == ["sh", "-c"] and argv[-3:] == ["tshark", "-i", "eth0"]
    assert "/tmp/labyrinth-cap-0a1b" in argv
    for bad in ("/", "/tmp", "/tmp/labyrinth-x/../../etc", "/home/me", "/tmp/labyrinth-a b"):
        with pytest.raises(UnsafeArgument):
            ended_with_reader(["true"], workdir=bad)


def test_the_watched_command_keeps_its_output_and_exit_status() -> None:
    done = subprocess.run(
        in_process_group(ended_with_reader(["sh", "-c", "echo hi; exit 3"], interval=0.1)),
        capture_output=True,
        text=True,
        timeout=10,
    )
    pgid, *rest = done.stdout.splitlines()
    assert pgid.isdigit() and [ln for ln in rest if ln] == ["hi"] and done.returncode == 3
