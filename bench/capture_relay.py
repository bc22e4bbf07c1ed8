"""The node-side relay's own cost (probes/capture_swap.py): CPU per packet, beside a plain pipe.

The same generated pcap goes through `relay → cat` (records framed, written to a run file, forwarded)
and through `cat` alone (the anchor: a pipe that only copies bytes); the reader is `cat` in both, so the
difference is the relay. The pcap is written the way tcpdump -U sends it: one packet per write, paced
at `--rate` packets/s (not in big chunks, which would hide the relay's per-wakeup cost).
Goal: the relay's own cost ≤ 10 µs of CPU per packet (≤ 20 % of a core at 20k packets/s); for scale,
tshark with our columns costs ~8 µs per packet (bench/capture_ingest.py prints it).

Run: `.venv/bin/python bench/capture_relay.py [--packets 60000] [--rate 20000] [--runs 3]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fakes.pcapgen

from lib.goals import Verdict, load_line
from tests.fakes.pcapgen import write_pcap

from labyrinth_tui.probes.capture_swap import swap_argv

READER = ["sh", "-c", "cat > /dev/null"]
GOAL_US = 10.0


def records(pcap: Path) -> tuple[bytes, list[bytes]]:
    """The pcap's header and its records, each as tcpdump -U would write it."""
    data = pcap.read_bytes()
    out, i = [], 24
    while i + 16 <= len(data):
        size = 16 + struct.unpack_from("<I", data, i + 8)[0]
        out.append(data[i : i + size])
        i += size
    return data[:24], out


def cpu_seconds(argv: list[str], header: bytes, packets: list[bytes], rate: int) -> float:
    """CPU seconds of argv's processes while it is fed one packet per write at `rate` packets/s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    fd = proc.stdin.fileno()
    os.write(fd, header)
    start = time.perf_counter()
    sent = 0
    while sent < len(packets):
        due = min(len(packets), int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            os.write(fd, packets[sent])
            sent += 1
        time.sleep(0.001)  # pacing: 1 ms steps, as a sender at `rate` would
    proc.stdin.close()
    proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--packets", type=int, default=60_000)
    args.add_argument("--rate", type=int, default=20_000)
    args.add_argument("--runs", type=int, default=3)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory(prefix="capture-relay-") as tmp:
        pcap = Path(tmp) / "in.pcap"
        write_pcap(pcap, opts.packets)
        header, packets = records(pcap)
        relay = swap_argv(f"{tmp}/run", 10**9, True, READER)  # records every packet, no swap
        ours, anchor = [], []
        for _ in range(opts.runs):  # interleaved: both see the same machine
            ours.append(cpu_seconds(relay, header, packets, opts.rate))
            anchor.append(cpu_seconds(READER, header, packets, opts.rate))
    per = 1e6 / len(packets)
    mine, plain = statistics.median(ours) * per, statistics.median(anchor) * per
    print(f"{len(packets)} packets, one per write at {opts.rate}/s, medians of {opts.runs} runs")
    print(f"relay → cat (recording each packet)   {mine:6.2f} µs CPU per packet")
    print(f"cat alone (the anchor)                 {plain:6.2f} µs CPU per packet")
    print(load_line())
    verdict = Verdict("bench/capture_relay.py")
    own = mine - plain
    verdict.goal(
        "relay's own CPU per packet", f"{own:.2f} µs", f"{plain:.2f} µs", f"≤ {GOAL_US:g} µs", own <= GOAL_US
    )
    return verdict.status()


if __name__ == "__main__":
    sys.exit(main())
