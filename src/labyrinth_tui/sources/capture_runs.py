"""A live stream's lines, as its node-side relay gives them: packets, and the runs of tshark behind them.

One tcpdump feeds the relay (probes/capture_swap.py), which swaps tshark at a packet boundary every
`restart_after` packets and says so with a marker line. tshark numbers its frames from 1 again after a
swap; here the stream's numbers go on, and each run's file on the node is remembered with the stream
number it starts after, so packet N of the stream is frame N - offset of its run's file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.probes.capture_parse import SummaryParser
from labyrinth_tui.probes.capture_ready import Canary, is_canary
from labyrinth_tui.probes.capture_swap import MARK
from labyrinth_tui.sources.base import StreamSpec


@dataclass(eq=False)
class RunFile:
    """One tshark run's pcap on the node: frame k of it is the stream's packet offset + k."""

    index: int
    path: str
    offset: int
    frames: int = 0  # its frames the stream has shown so far (all of them once the run is over)
    removed: bool = False  # deleted on the node (nothing records the stream)
    recorded: int | None = None  # the file holds only its first `recorded` frames (a write failed)

    @property
    def kept(self) -> int:
        """How many of its frames its file holds, from frame 1."""
        return self.frames if self.recorded is None else min(self.frames, self.recorded)


def run_path(prefix: str, index: int) -> str:
    """The relay's name for run `index`'s file."""
    return f"{prefix}-{index:04d}.pcap"


@dataclass(eq=False)
class Lines:
    """Turns the relay's lines into packets; `note` is told of tshark swaps (for the user)."""

    prefix: str  # the runs' files: <prefix>-NNNN.pcap
    keep: bool  # the relay keeps every run's file (else only the current one)
    canary: Canary
    parser: SummaryParser
    note: Callable[[str], None]
    behind: Callable[[int, float], None] = field(default=lambda packets, seconds: None)  # relay's lag
    # tcpdump's count of packets the kernel dropped for it, as the relay asks it (SIGUSR1) each second
    kernel_dropped: Callable[[int], None] = field(default=lambda packets: None)
    runs: list[RunFile] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # our canary came through tshark
    recorded: asyncio.Event = field(default_factory=asyncio.Event)  # the relay recorded our canary
    # later canaries watched for, by source MAC: (recorded by the relay, shown by tshark)
    watched: dict[str, tuple[asyncio.Event, asyncio.Event]] = field(default_factory=dict)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""  # why the capture ended by itself ("" when we stopped it)
    stopping: bool = False

    def __post_init__(self) -> None:
        self.runs.append(RunFile(0, run_path(self.prefix, 0), 0))

    def take(self, pending: list[PacketSummary], lines: list[str]) -> None:
        """A chunk of lines: packets to `pending` (canaries out), runs noted at each marker.

        The lines between two markers are parsed in one go (`parse_many`: one loop for a chunk)."""
        start = 0
        for at, line in enumerate(lines):
            if line.startswith(MARK):
                self._packets(pending, lines[start:at])
                self._marker(line[len(MARK) :])
                start = at + 1
        self._packets(pending, lines[start:] if start else lines)

    def _packets(self, pending: list[PacketSummary], lines: list[str]) -> None:
        # empty lines are the node's "is anyone reading?" probe
        packets = self.parser.parse_many(line for line in lines if line)
        if not packets:
            return
        run = self.runs[-1]
        run.frames = packets[-1].number - run.offset
        mine, ready = self.canary.src_mac, self.ready
        for packet in packets:
            if is_canary(packet):
                if packet.src == mine and not ready.is_set():
                    ready.set()
                if (watch := self.watched.get(packet.src)) is not None:
                    watch[1].set()
                continue
            pending.append(packet)

    def _marker(self, text: str) -> None:
        kind, *values = text.split("\t")
        try:
            numbers = [int(v) for v in values]
        except ValueError:
            numbers = []
        if kind == "run" and len(numbers) == 3:
            index, frames, status = numbers
            done = self.runs[-1]
            done.frames, done.removed = frames, not self.keep
            offset = done.offset + frames
            self.runs.append(RunFile(index, run_path(self.prefix, index), offset))
            self.parser.next_file(offset)
            said = f"restarted tshark after {frames} packets (its memory only grows)"
            if status:  # it died before its last lines: packets of it may be missing from the view
                said += f"; the old one exited {status}: some of its last packets may not be shown"
            self.note(said)
        elif kind == "behind" and len(numbers) == 2:
            self.behind(max(0, numbers[0]), max(0, numbers[1]) / 1000)
        elif kind == "canary" and len(values) == 1 and len(values[0]) == 12:
            mac = ":".join(values[0][i : i + 2] for i in range(0, 12, 2))
            if mac == self.canary.src_mac:
                self.recorded.set()
            if (watch := self.watched.get(mac)) is not None:
                watch[0].set()
        elif kind == "dropped" and len(numbers) == 1:
            self.kernel_dropped(max(0, numbers[0]))
        elif kind == "failed" and numbers:
            why = "was not ready in 15 s" if numbers[0] == -1 else f"exited {numbers[0]}"
            self.note(f"a fresh tshark failed to start ({why}); the running one goes on")
        elif kind == "unrecorded" and len(numbers) == 2:
            run = next((r for r in self.runs if r.index == numbers[0]), None)
            if run is not None:
                run.recorded = numbers[1]
                self.note(f"recording stopped on the node after packet {run.offset + numbers[1]} (disk?)")

    def where(self, number: int) -> tuple[RunFile, int] | None:
        """The run file holding the stream's packet `number`, and its frame number there."""
        for run in self.runs:
            local = number - run.offset
            if 1 <= local <= run.frames:
                return None if run.removed or local > run.kept else (run, local)
        return None

    def parts(self) -> tuple[list[tuple[str, int, int]], str]:
        """The node files that hold the stream as it stands, (path, 1, frames) each, and a note for the
        user when they are not all of it from packet 1 (earlier runs deleted, a file cut short)."""
        runs = [r for r in self.runs if not r.removed]
        note = ""
        if runs and runs[0].offset > 0:
            first = runs[0].offset + 1
            note = f"packets from #{first:,} on only (frame 1 is #{first:,}): earlier runs are not kept"
        parts: list[tuple[str, int, int]] = []
        for run in runs:
            if run.kept > 0:
                parts.append((run.path, 1, run.kept))
            if run.kept < run.frames:  # what follows would shift every later frame: stop here
                last = run.offset + run.kept
                note = (note + "; " if note else "") + f"only up to packet #{last:,} (recording stopped)"
                break
        return parts, note


def ended_why(spec: StreamSpec, status: int | None, stderr: str) -> str:
    """tshark's own last words when it ended by itself (the interface vanished, a crash)."""
    if status == 127:
        return f"tshark or python3 is not installed on {spec.node} (e.g. `apt-get install tshark python3`)"
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(("Capturing on", "Running as", " "))
    ]
    said = lines[-1] if lines else "no message"
    return f"tshark on {spec.node}/{spec.interface} ended (exit {status}): {said}"
