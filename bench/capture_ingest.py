"""Capture ingest (issue 5): packets/s from a generated pcap into a PacketRing, ours beside tshark and pyshark.

Ours: tshark with our summary columns (probes/capture_parse.py) as a subprocess, its stdout read in
big chunks, parsed, appended to a 100k PacketRing. Anchors, measured in the same run on the same file:
`tshark -r FILE` (its one-line summary, to /dev/null), `tshark -T fields` with the same information,
and pyshark FileCapture with its defaults on a 20k-packet slice (it decodes ~660 packets/s).
Goals: ours >= 0.7 x tshark's summary, >= 150 x pyshark. Runs interleave; medians are reported.

Run: `.venv/bin/python bench/capture_ingest.py [--packets 200000] [--runs 3] [--pyshark-slice 20000]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fakes.pcapgen

from tests.fakes.pcapgen import write_pcap

from labyrinth_tui.model.packets import PacketRing
from labyrinth_tui.probes.capture import VXLAN_PORT, read_argv
from labyrinth_tui.probes.capture_parse import LineAssembler, SummaryParser

GOAL_VS_SUMMARY = 0.7
GOAL_VS_PYSHARK = 150.0
FIELDS = [
    "frame.time_epoch",
    "frame.number",
    "frame.len",
    "ip.src",
    "ip.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "_ws.col.Protocol",
    "tcp.flags",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "ip.id",
    "vxlan.vni",
    "dns.id",
    "dns.qry.name",
    "dns.qry.type",
    "dns.flags.rcode",
    "dns.a",
    "dns.aaaa",
    "_ws.col.Info",
]


def ours(pcap: Path) -> tuple[float, PacketRing, SummaryParser]:
    """Spawn to EOF: tshark → pipe → chunks → lines → PacketSummary → ring."""
    parser = SummaryParser("node-1", "ens4")
    ring = PacketRing(100_000)
    lines = LineAssembler()
    start = time.perf_counter()
    proc = subprocess.Popen(read_argv(str(pcap)), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    while chunk := os.read(fd, 1 << 20):
        ring.extend(parser.parse_many(lines.feed(chunk.decode("utf-8", "replace"))))
    ring.extend(parser.parse_many(lines.flush()))
    proc.wait()
    return time.perf_counter() - start, ring, parser


def command_seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def tshark_fields_argv(pcap: Path) -> list[str]:
    argv = ["tshark", "-r", str(pcap), "-n", "-d", f"udp.port=={VXLAN_PORT},vxlan", "-T", "fields"]
    argv += ["-E", "separator=/t", "-E", "occurrence=a"]
    for field in FIELDS:
        argv += ["-e", field]
    return argv


def parse_only_rate(pcap: Path) -> float:
    """Our parser alone on lines already in memory (where the Python side stands)."""
    text = subprocess.run(read_argv(str(pcap)), capture_output=True, text=True, check=True).stdout
    lines = text.split("\n")[:-1]
    parser = SummaryParser("node-1", "ens4")
    ring = PacketRing(100_000)
    start = time.perf_counter()
    ring.extend(parser.parse_many(lines))
    return len(lines) / (time.perf_counter() - start)


def pyshark_rate(pcap: Path) -> tuple[float, int]:
    import pyshark  # slow to import; only here

    capture = pyshark.FileCapture(str(pcap))  # defaults, as a user would
    count = 0
    start = time.perf_counter()
    try:
        for _packet in capture:
            count += 1
    finally:
        capture.close()
    return count / (time.perf_counter() - start), count


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--packets", type=int, default=200_000)
    args.add_argument("--runs", type=int, default=3)
    args.add_argument("--pyshark-slice", type=int, default=20_000)
    opts = args.parse_args()

    with tempfile.TemporaryDirectory(prefix="capture-ingest-") as tmp:
        pcap = Path(tmp) / "article.pcap"
        write_pcap(pcap, opts.packets)
        n = opts.packets
        print(f"pcap: {n} packets (TCP flows, DNS walks, VXLAN on 8472), {pcap.stat().st_size / 1e6:.1f} MB")

        summary_rates, fields_rates, our_rates, tshark_ours_rates = [], [], [], []
        for run in range(opts.runs):
            summary_rates.append(n / command_seconds(["tshark", "-r", str(pcap)]))
            fields_rates.append(n / command_seconds(tshark_fields_argv(pcap)))
            tshark_ours_rates.append(n / command_seconds(read_argv(str(pcap))))
            seconds, ring, parser = ours(pcap)
            if parser.parsed != n or parser.skipped_total:
                print(f"FAIL: parsed {parser.parsed} of {n}, skipped {dict(parser.skipped)}")
                return 1
            our_rates.append(n / seconds)
            print(
                f"run {run + 1}: ours {our_rates[-1]:,.0f}/s  summary {summary_rates[-1]:,.0f}/s  "
                f"fields {fields_rates[-1]:,.0f}/s  (ring holds {len(ring)}, dropped {ring.dropped})"
            )
        parse_rate = parse_only_rate(pcap)

        slice_path = Path(tmp) / "slice.pcap"
        write_pcap(slice_path, opts.pyshark_slice)
        py_rate, py_count = pyshark_rate(slice_path)
        if py_count != opts.pyshark_slice:
            print(f"FAIL: pyshark read {py_count} of {opts.pyshark_slice}")
            return 1

    ours_med = statistics.median(our_rates)
    summary_med = statistics.median(summary_rates)
    fields_med = statistics.median(fields_rates)
    print()
    print(f"{'ours: tshark (our columns) + parser + ring':<48}{ours_med:>12,.0f} packets/s")
    print(
        f"{'  of which tshark alone, our columns':<48}{statistics.median(tshark_ours_rates):>12,.0f} packets/s"
    )
    print(f"{'  of which our parser + ring alone':<48}{parse_rate:>12,.0f} lines/s")
    print(f"{'tshark -r FILE (one-line summary)':<48}{summary_med:>12,.0f} packets/s")
    print(f"{'tshark -T fields (same information)':<48}{fields_med:>12,.0f} packets/s")
    print(f"{f'pyshark FileCapture defaults ({opts.pyshark_slice} packets)':<48}{py_rate:>12,.0f} packets/s")
    print()
    vs_summary, vs_fields, vs_pyshark = ours_med / summary_med, ours_med / fields_med, ours_med / py_rate
    verdict_summary = "ok" if vs_summary >= GOAL_VS_SUMMARY else "BELOW GOAL"
    verdict_pyshark = "ok" if vs_pyshark >= GOAL_VS_PYSHARK else "BELOW GOAL"
    print(f"ours / tshark summary : {vs_summary:6.2f}   goal >= {GOAL_VS_SUMMARY}  {verdict_summary}")
    print(f"ours / tshark -T fields: {vs_fields:6.2f}")
    print(f"ours / pyshark        : {vs_pyshark:6.0f}   goal >= {GOAL_VS_PYSHARK:.0f}  {verdict_pyshark}")
    print(
        "per run, ours / summary:",
        "  ".join(f"{o / s:.2f}" for o, s in zip(our_rates, summary_rates, strict=True)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
