"""The node-side relay between tcpdump and tshark: records each packet first, feeds tshark behind it.

tshark's memory grows ~0.8 KB per packet for as long as it runs (docs/lab-facts.md; its own `-M` session reset
does not bound it), so a long stream needs a fresh tshark now and then. ONE tcpdump feeds this relay
(python3, which the node already needs for canaries), a single loop that:

- writes every packet to the current run's pcap file the moment it arrives (`<prefix>-0000.pcap`, …:
  live dissection, export and the journey read it), and only then offers it to the current tshark;
- never blocks on tshark: tshark's stdin is non-blocking, and what tshark has not taken yet stays
  queued as stretches of the run's file (read back with pread when tshark catches up), so a slow
  tshark — or a slow app behind it, which stops tshark's output — can not make tcpdump wait, and the
  kernel drops nothing because of us. Only an unrecorded stream (no prefix, or a failed write) is
  held in memory, up to 64 MiB, before the relay stops reading (then tcpdump waits, as before);
- every 0.5 s while tshark is behind, says by how much (the marker below; the app shows "behind by N
  packets / S s, all recorded"), and once more with 0 when it has caught up. Nothing is skipped: the
  feed catches up from the file after the burst;
- after `every` packets starts a spare tshark and gives it the pcap header; once the spare has read
  the header and sleeps reading its stdin (its ~1 s of dissector loading is over: its pipe is empty
  (FIONREAD) and /proc/PID/wchan says `pipe_read`), the next run's file starts at that packet
  boundary; when the feed reaches the boundary the relay closes the current tshark's stdin, waits
  for it to print its last line and exit, writes a marker line, and feeds the spare from there.

- given tcpdump's argv, starts tcpdump itself (else reads a pcap stream on stdin): the kernel counts the
  packets it drops for tcpdump's socket, but tcpdump prints that count only at exit or on SIGUSR1
  (`man tcpdump`; here, 4.99: one line "tcpdump: A packets captured, B packets received by filter,
  C packets dropped by kernel" on stderr; at exit three lines "… packets dropped by kernel" last).
  So once tcpdump says "listening on", the relay sends it SIGUSR1 every second, reads the answer
  from tcpdump's stderr (non-blocking, in the same loop: the capture never waits for it), and says
  the count (the marker below) whenever it grows. tcpdump's other words — errors, its final counts
  — go on to the relay's stderr unchanged.

So every packet reaches exactly one tshark, lines stay in capture order, and run N's file holds
exactly tshark run N's frames. The relay costs a few µs of CPU per packet, recording included
(`bench/capture_relay.py` prints it), against tshark's ~8 µs per packet.
Markers, on stdout between tshark's lines (tshark numbers from 1 again after a "run" one):
- `MARK + "run\t<index>\t<packets in the previous run>\t<its tshark's exit status>"`;
- `MARK + "failed\t<status>"`: a spare died, or was not ready within 15 s (-1) and was killed; the
  current tshark goes on, another try one budget later;
- `MARK + "unrecorded\t<run>\t<records>"`: writing run's file failed (a full disk): the file was cut
  back to its first <records> packets, and records no more of that run;
- `MARK + "behind\t<packets>\t<milliseconds>"`: recorded packets tshark has not been given yet, and
  how long the oldest of them has waited (0 0: caught up). Written only when stdout has room, so a
  stalled reader never stalls the relay for it.
- `MARK + "dropped\t<packets>"`: packets the kernel dropped for tcpdump so far (tcpdump's own count;
  said when it grows, and once more after tcpdump's final count if that differs).
- `MARK + "canary\t<source MAC, 12 hex>"`: a readiness canary (probes/capture_ready.py: destination
  02:6c:61:62:79:72) with that source is in the recording, said once per source, after the packet is
  in the run's file: from then on every packet on the interface is recorded, whether or not tshark
  is up yet. With a recording, the file `<prefix>-canary-<hex>` is made too: the canary's sender
  stops when it sees it.
The relay's exit status is the current tshark's (0 when tcpdump's end ended the stream; 127 when
tshark cannot be started; 128+N when tshark died of signal N; 2 when stdin is not a pcap stream).
"""

from __future__ import annotations

from importlib import resources
from typing import Final

MARK: Final = "\x1elabyrinth\t"
# tshark's memory grows ~0.8 KB per packet even in one pass (docs/lab-facts.md): after 250k packets (≈ 200 MB)
# the relay swaps in a fresh tshark at a packet boundary. tshark's own `-M N` (session auto reset) does
# not bound it, measured reading a pipe: 1M packets 748 MB without; 2M packets 616 MB with -M 50000 and
# 1.25 GB with -M 20000 (`cat FILE | /usr/bin/time -f %M tshark -r - -M N -T tabs …`, FILE from
# tests/fakes/pcapgen.write_pcap).
RESTART_AFTER: Final = 250_000

# the relay itself runs on the node (`python3 -c`, the node's own python3): it ships as files of the
# package, so that it reads, diffs and lints as the Python it is, one module per concept
RELAY_PARTS: Final = ("relay_wire", "relay_run")  # imported by the relay, in this order
RELAY_MAIN: Final = "capture_relay"


def _relay_script() -> str:
    """One `python3 -c` program: each part made a module (so the relay's imports find it), then the relay."""
    node = resources.files("labyrinth_tui") / "assets" / "node"
    lines = ["import sys, types"]
    for name in (*RELAY_PARTS, RELAY_MAIN):
        source = (node / f"{name}.py").read_text()
        if name == RELAY_MAIN:
            lines.append(f"exec(compile({source!r}, {name + '.py'!r}, 'exec'), {{'__name__': '__main__'}})")
        else:
            lines += [
                f"m = sys.modules[{name!r}] = types.ModuleType({name!r})",
                f"exec(compile({source!r}, {name + '.py'!r}, 'exec'), m.__dict__)",
            ]
    return "\n".join(lines) + "\n"


SWAP_SCRIPT: Final = _relay_script()


def swap_argv(
    prefix: str,
    every: int,
    keep: bool,
    tshark: list[str],
    capture: list[str] | None = None,
    canary: bytes = b"",
) -> list[str]:
    """python3 running the relay: files `<prefix>-NNNN.pcap` ("" records nothing), a fresh tshark every
    `every` packets (kept files when `keep`, else a run's file is deleted when the next one starts).
    With `capture` (tcpdump's argv writing pcap to stdout) the relay starts it and reads its packets;
    without, it reads a pcap stream on its own stdin. With `canary` (a readiness canary's frame) and
    `capture`, the relay itself sends it on tcpdump's interface every 0.1 s from the moment tcpdump
    listens until the recording has it (at most 10 s; on failure it says why on stderr and stops)."""
    if prefix and (not prefix.startswith("/") or "\0" in prefix or prefix.endswith("/")):
        raise ValueError(f"a recording needs an absolute path prefix on the node, not {prefix!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"restart tshark after a positive number of packets, not {every!r}")
    if not tshark:
        raise ValueError("the relay needs tshark's argv")
    capture = list(capture or [])
    counts = [str(every), "1" if keep else "0", str(len(capture)), canary.hex() if capture else ""]
    return ["python3", "-c", SWAP_SCRIPT, prefix, *counts, *capture, *tshark]
