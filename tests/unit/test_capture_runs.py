"""The node-side relay (real python3 and tshark, fed a generated pcap) and the stream's view of its runs."""

from __future__ import annotations

import asyncio
import os
import resource
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.commands import UnsafeArgument, ended_with_reader, in_process_group
from labyrinth_tui.probes.capture import Relay, capture_argv, read_argv
from labyrinth_tui.probes.capture_parse import LineAssembler, SummaryParser
from labyrinth_tui.probes.capture_ready import CANARY_DST, Canary
from labyrinth_tui.probes.capture_swap import MARK, swap_argv
from labyrinth_tui.sources.capture_runs import Lines, run_path
from tests.fakes.pcapgen import frames, write_frames, write_pcap

TSHARK = ["tshark", "-r", "-", "-l", "-n", *read_argv("x")[4:]]  # the reader capture_argv pipes into


def relay(
    pcap: Path,
    prefix: str,
    every: int,
    keep: bool = True,
    tshark: list[str] = TSHARK,
    env: dict[str, str] | None = None,
    preexec: object = None,
) -> str:
    """The relay fed `pcap` at a live-like pace (~50 chunks/s), as tcpdump would: a spare tshark has
    time to load while packets keep coming."""
    errors = pcap.with_suffix(".stderr")
    proc = subprocess.Popen(
        swap_argv(prefix, every, keep, tshark),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors.open("wb"),
        env={**os.environ, **(env or {})},
        preexec_fn=preexec,  # type: ignore[arg-type]
    )
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        assert proc.stdin is not None
        data = pcap.read_bytes()
        for i in range(0, len(data), 16_384):
            proc.stdin.write(data[i : i + 16_384])
            proc.stdin.flush()
            time.sleep(0.02)  # why: the pace is the point (a spare tshark loads meanwhile)
        proc.stdin.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    out = proc.stdout.read()  # (communicate() would close stdin under the feeder)
    feeder.join()
    assert proc.wait(timeout=60) == 0, errors.read_text()[-500:]
    return out.decode()


def later_starts(folder: Path, then: str) -> list[str]:
    """tshark's argv behind a wrapper: the first start is tshark, every later one runs `then`."""
    starts, wrapper = folder / "starts", folder / "tshark-first-only"
    wrapper.write_text(
        f'#!/bin/sh\necho x >> {starts}\n[ "$(wc -l < {starts})" -eq 1 ] || {then}\nexec "$@"\n'
    )
    wrapper.chmod(0o755)
    return [str(wrapper), *TSHARK]


def lines_of(prefix: str, keep: bool = True) -> tuple[Lines, list[str]]:
    notes: list[str] = []
    return Lines(prefix, keep, Canary.new(), SummaryParser("node-1", "lxc1"), notes.append), notes


def test_every_packet_reaches_one_tshark_in_order_and_the_runs_files_hold_them(tmp_path: Path) -> None:
    pcap = tmp_path / "in.pcap"
    truth = write_pcap(pcap, 12_000)
    prefix = str(tmp_path / "run")
    out = relay(pcap, prefix, every=3000)
    lines, notes = lines_of(prefix)
    pending: list[PacketSummary] = []
    lines.take(pending, LineAssembler().feed(out))
    # every packet once, in capture order, numbered on across the swaps
    assert [p.number for p in pending] == list(range(1, 12_001))
    assert [p.ts for p in pending] == sorted(p.ts for p in pending)
    assert [p.ip_id for p in pending] == [t.ip_id for t in truth]
    assert len(lines.runs) >= 2 and len(notes) == len(lines.runs) - 1
    assert all(n.startswith("restarted tshark after") for n in notes)
    assert lines.parts() == ([(r.path, 1, r.frames) for r in lines.runs], "")
    # each run's file is a pcap of exactly its packets: packet N is frame N - offset of its run
    for run in lines.runs:
        assert run.path == run_path(prefix, run.index)
        ids = subprocess.run(
            [
                "tshark",
                "-r",
                run.path,
                "-d",
                "udp.port==8472,vxlan",
                "-T",
                "fields",
                "-e",
                "ip.id",
                "-E",
                "occurrence=l",
            ],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert len(ids) == run.frames
        kept = pending[run.offset : run.offset + run.frames]
        assert [int(i, 16) for i in ids] == [p.ip_id for p in kept]
    assert lines.where(1) == (lines.runs[0], 1)
    last = lines.runs[-1]
    assert lines.where(12_000) == (last, 12_000 - last.offset)
    assert lines.where(12_001) is None


def test_without_keep_only_the_current_runs_file_remains(tmp_path: Path) -> None:
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, 9_000)
    prefix = str(tmp_path / "run")
    out = relay(pcap, prefix, every=2000, keep=False)
    lines, _ = lines_of(prefix, keep=False)
    lines.take([], LineAssembler().feed(out))
    assert len(lines.runs) >= 2
    assert [Path(r.path).exists() for r in lines.runs] == [False] * (len(lines.runs) - 1) + [True]
    assert lines.where(1) is None  # its run's file is gone from the node
    assert lines.where(9_000) is not None


def test_a_spare_that_dies_before_it_is_ready_leaves_the_running_tshark_going(tmp_path: Path) -> None:
    """The second tshark the relay starts exits at once: the stream says so and loses nothing."""
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, 6_000)
    out = relay(pcap, str(tmp_path / "run"), every=1000, tshark=later_starts(tmp_path, "exit 3"))
    lines, notes = lines_of(str(tmp_path / "run"))
    pending: list[PacketSummary] = []
    lines.take(pending, LineAssembler().feed(out))
    assert [p.number for p in pending] == list(range(1, 6_001))
    # (it may die before it takes the pcap header: then the relay saw EPIPE, exit 32)
    assert len(lines.runs) == 1 and notes and notes[0].startswith("a fresh tshark failed to start (exited 3")


def test_a_spare_that_never_gets_ready_is_given_up_and_nothing_is_lost(tmp_path: Path) -> None:
    """A second tshark that never reads its pipe (a hung start): killed after the wait, said so."""
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, 8_000)
    prefix = str(tmp_path / "run")
    hangs = later_starts(tmp_path, "exec sleep 60")
    out = relay(pcap, prefix, every=1000, tshark=hangs, env={"LABYRINTH_RELAY_SPARE_WAIT": "0.5"})
    lines, notes = lines_of(prefix)
    pending: list[PacketSummary] = []
    lines.take(pending, LineAssembler().feed(out))
    assert [p.number for p in pending] == list(range(1, 8_001)) and len(lines.runs) == 1
    assert "a fresh tshark failed to start (was not ready in 15 s); the running one goes on" in notes


def test_a_full_disk_cuts_the_recording_back_to_whole_packets_and_says_so(tmp_path: Path) -> None:
    """Files may not grow past 40 kB (RLIMIT_FSIZE, as a full disk would refuse): each run's file keeps
    its whole first packets, the stream goes on, and exports stop where the recording stopped."""
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, 12_000)
    prefix = str(tmp_path / "run")

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    out = relay(pcap, prefix, every=3000, preexec=small_files)
    lines, notes = lines_of(prefix)
    pending: list[PacketSummary] = []
    lines.take(pending, LineAssembler().feed(out))
    assert [p.number for p in pending] == list(range(1, 12_001))  # the stream itself lost nothing
    first = lines.runs[0]
    assert first.recorded is not None and 0 < first.recorded < first.frames
    assert any(n.startswith(f"recording stopped on the node after packet {first.recorded}") for n in notes)
    frames = subprocess.run(["tshark", "-r", first.path], capture_output=True, text=True)
    assert frames.returncode == 0 and len(frames.stdout.splitlines()) == first.recorded  # whole packets
    parts, note = lines.parts()
    assert parts == [(first.path, 1, first.recorded)] and f"only up to packet #{first.recorded:,}" in note
    assert lines.where(first.recorded) == (first, first.recorded)
    assert lines.where(first.recorded + 1) is None  # not in the file: no dissection of it


def test_a_stalled_tshark_never_holds_up_the_recording_and_catches_up_from_it(tmp_path: Path) -> None:
    """tshark does not read at all until the test lets it: the relay still takes every packet at once
    (tcpdump never waits), has them all in the run's file, says how far behind tshark is, and once
    tshark reads, every packet reaches it in order and the relay says it caught up."""
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, 20_000)  # ~3 MB: far more than a pipe holds
    go = tmp_path / "go"
    gated = ["sh", "-c", f'while [ ! -e {go} ]; do sleep 0.05; done; exec "$@"', "gate", *TSHARK]
    prefix = str(tmp_path / "run")
    proc = subprocess.Popen(
        swap_argv(prefix, 10**9, True, gated), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    data = pcap.read_bytes()
    written = threading.Event()

    def feed() -> None:
        assert proc.stdin is not None
        proc.stdin.write(data)  # blocks only if the relay stops reading
        proc.stdin.close()
        written.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    assert written.wait(30), "the relay stopped reading while tshark was stalled"
    first = proc.stdout.readline().decode()  # nothing but a marker can come before tshark reads
    assert first.startswith(MARK + "behind\t")
    assert 0 < int(first.split("\t")[2]) <= 20_000  # (the pipe to tshark holds a few hundred)
    assert Path(run_path(prefix, 0)).read_bytes() == data  # all recorded while tshark read nothing
    go.touch()
    rest = proc.stdout.read().decode()
    feeder.join()
    assert proc.wait(timeout=60) == 0
    lags: list[tuple[int, float]] = []
    lines, _ = lines_of(prefix)
    lines.behind = lambda packets, seconds: lags.append((packets, seconds))
    pending: list[PacketSummary] = []
    lines.take(pending, LineAssembler().feed(first + rest))
    assert [p.number for p in pending] == list(range(1, 20_001))
    assert lags[0][0] > 0 and lags[0][1] >= 0.5 and lags[-1] == (0, 0.0)


def test_a_dead_tshark_ends_the_relay_with_its_status(tmp_path: Path) -> None:
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, 50_000)
    with pcap.open("rb") as stdin:
        done = subprocess.run(
            swap_argv("", 10**9, True, ["sh", "-c", "head -c 100 >/dev/null; exit 7"]),
            stdin=stdin,
            capture_output=True,
            timeout=60,
        )
    assert done.returncode == 7


def test_an_empty_capture_ends_quietly() -> None:
    done = subprocess.run(swap_argv("", 5, True, TSHARK), input=b"", capture_output=True, timeout=30)
    assert done.returncode == 0 and done.stdout == b""


def test_canaries_make_the_stream_ready_and_are_not_shown(tmp_path: Path) -> None:
    lines, _ = lines_of(str(tmp_path / "run"))
    mine = lines.canary
    canary = "\t".join(["1.0", "1", "60", mine.src_mac, "", CANARY_DST, "", "0x88b5", *[""] * 8, "x"])
    other = "\t".join(["1.1", "2", "60", "02:00:00:00:00:01", "", CANARY_DST, "", "0x88b5", *[""] * 8, "x"])
    pending: list[PacketSummary] = []
    lines.take(pending, [canary, other, ""])
    assert lines.ready.is_set() and pending == [] and lines.runs[0].frames == 2


def test_a_malformed_marker_is_ignored(tmp_path: Path) -> None:
    lines, notes = lines_of(str(tmp_path / "run"))
    lines.take([], [MARK + "run\tx\ty", MARK + "what", MARK + "failed"])
    assert len(lines.runs) == 1 and notes == []


def test_the_relay_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="absolute"):
        swap_argv("relative/run", 5, True, TSHARK)
    with pytest.raises(ValueError, match="positive"):
        swap_argv("/tmp/x/run", 0, True, TSHARK)
    with pytest.raises(ValueError, match="tshark's argv"):
        swap_argv("/tmp/x/run", 5, True, [])
    with pytest.raises(ValueError, match="tcpdump engine's"):
        capture_argv("ens4", engine="tshark", relay=Relay("/tmp/x/run"))


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


def test_the_relay_says_when_a_canary_is_recorded_and_tshark_shows_it_after(tmp_path: Path) -> None:
    """Record first: the relay names each canary source once it is in the run's file (and leaves a
    file its sender stops at); tshark shows the canary later, and a watched canary is seen both ways."""
    pcap = tmp_path / "in.pcap"
    write_frames(pcap, frames(20))
    prefix = str(tmp_path / "run")
    lines, _ = lines_of(prefix)
    later = Canary.new()
    recorded, shown = asyncio.Event(), asyncio.Event()
    lines.watched[later.src_mac] = (recorded, shown)
    with pcap.open("ab") as out:
        for canary in (lines.canary, lines.canary, later):
            out.write(struct.pack("<IIII", 1_700_000_100, 0, 60, 60) + canary.frame())
    said = relay(pcap, prefix, every=1000)
    markers = [line for line in said.split("\n") if line.startswith(MARK + "canary")]
    hexes = [c.src_mac.replace(":", "") for c in (lines.canary, later)]
    assert markers == [MARK + f"canary\t{h}" for h in hexes]  # once per source, in recording order
    assert all(Path(f"{prefix}-canary-{h}").exists() for h in hexes)
    pending: list[PacketSummary] = []
    lines.take(pending, LineAssembler().feed(said))
    assert lines.recorded.is_set() and lines.ready.is_set() and recorded.is_set() and shown.is_set()
    assert len(pending) == 20 and lines.runs[0].frames == 23  # the canaries are in the file, not shown
