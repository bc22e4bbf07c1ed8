"""Kernel drops per stream: the relay asks tcpdump for its counts (SIGUSR1) and says them to the app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from labyrinth_tui.probes.capture_parse import SummaryParser
from labyrinth_tui.probes.capture_ready import Canary
from labyrinth_tui.probes.capture_swap import MARK, swap_argv
from labyrinth_tui.sources.base import StreamDrops, StreamSpec
from labyrinth_tui.sources.capture_runs import Lines
from tests.fakes.pcapgen import write_pcap

# tcpdump 4.99 as measured here: a pcap header on stdout, "listening on" on stderr, one line of counts
# per SIGUSR1, three lines at exit. This one drops 3 more per SIGUSR1 and ends after the second, its
# final count (7) above the last answer (6): the app must get the final one too.
FAKE_TCPDUMP = r"""
import os, signal, sys
pcap = open(sys.argv[1], "rb").read()
asked = []
def info(signum, frame):
    asked.append(1)
    n = 3 * len(asked)
    counts = "%d packets captured, %d packets received by filter, %d packets dropped by kernel"
    sys.stderr.write("tcpdump: " + counts % (n, 2 * n, n) + "\n")
    sys.stderr.flush()
signal.signal(signal.SIGUSR1, info)
os.write(1, pcap)
sys.stderr.write("tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 2048 bytes\n")
sys.stderr.flush()
while len(asked) < 2:
    signal.pause()
sys.stderr.write("9 packets captured\n14 packets received by filter\n7 packets dropped by kernel\n")
"""


def test_the_relay_asks_tcpdump_each_second_and_says_its_kernel_drops(tmp_path: Path) -> None:
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, 5)
    fake = [sys.executable, "-c", FAKE_TCPDUMP, str(pcap)]
    tshark = ["sh", "-c", "cat >/dev/null"]
    done = subprocess.run(
        swap_argv("", 10**9, True, tshark, capture=fake), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    markers = [line for line in done.stdout.split(b"\n") if line.startswith(MARK.encode())]
    counts = [int(line.rsplit(b"\t", 1)[1]) for line in markers if b"\tdropped\t" in line]
    # said as they grow (the first answer at once; one may end up folded into the final count)
    assert counts[0] == 3 and counts[-1] == 7 and counts == sorted(set(counts))
    said = done.stderr.decode()
    # its answers to our signals are ours; its other words (listening, final counts) are passed on
    assert "packets captured," not in said
    assert said.splitlines()[-1] == "7 packets dropped by kernel" and "listening on eth0" in said


def test_a_dropped_marker_reaches_the_stream_as_its_header_words() -> None:
    seen: list[int] = []
    lines = Lines("/tmp/labyrinth-cap-0a/run", True, Canary.new(), SummaryParser("n", "i"), lambda _: None)
    lines.kernel_dropped = seen.append
    lines.take([], [MARK + "dropped\t12", MARK + "dropped\tlots", MARK + "dropped\t-1"])
    assert seen == [12, 0]  # a word that is not a count is ignored; a count never goes negative
    spec = StreamSpec("node-a", "eth0")
    assert StreamDrops(spec, 1234).text == "kernel dropped 1,234" and StreamDrops(spec, 0).text == ""
