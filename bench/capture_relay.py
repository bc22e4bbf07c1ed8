"""The node-side relay's own cost (probes/capture_swap.py): CPU per packet, beside a plain pipe.

The same generated pcap goes through `relay → cat` (records framed, written to a run file, forwarded)
and through `cat` alone (the anchor: a pipe that only copies bytes); the reader is `cat` in both, so the
difference is the relay. For scale, tshark with our columns costs ~8 µs per packet
(bench/capture_ingest.py prints it).

Run: `.venv/bin/python bench/capture_relay.py [--packets 200000] [--runs 3]`.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fakes.pcapgen

from tests.fakes.pcapgen import write_pcap

from labyrinth_tui.probes.capture_swap import swap_argv

READER = ["sh", "-c", "cat > /dev/null"]


def cpu_seconds(argv: list[str], pcap: Path) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with pcap.open("rb") as stdin:
        subprocess.run(argv, stdin=stdin, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--packets", type=int, default=200_000)
    args.add_argument("--runs", type=int, default=3)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory(prefix="capture-relay-") as tmp:
        pcap = Path(tmp) / "in.pcap"
        write_pcap(pcap, opts.packets)
        relay = swap_argv(f"{tmp}/run", 10**9, True, READER)  # records every packet, no swap
        ours = statistics.median(cpu_seconds(relay, pcap) for _ in range(opts.runs))
        anchor = statistics.median(cpu_seconds(READER, pcap) for _ in range(opts.runs))
    per = 1e6 / opts.packets
    print(f"{opts.packets} packets, medians of {opts.runs} runs")
    print(f"relay → cat (recording each packet)   {ours * per:6.2f} µs CPU per packet")
    print(f"cat alone (the anchor)                 {anchor * per:6.2f} µs CPU per packet")
    print(f"relay's own cost                       {(ours - anchor) * per:6.2f} µs per packet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
