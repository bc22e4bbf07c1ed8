"""The node-side relay between tcpdump and tshark: records each packet, and swaps tshark at a packet boundary.

tshark's memory grows ~0.8 KB per packet for as long as it runs (LAB-NOTES; its own `-M` session reset
does not bound it), so a long stream needs a fresh tshark now and then. Two overlapping captures handed
over at a canary (the first design) doubled the CPU for seconds and needed a timestamp cut. Instead,
ONE tcpdump feeds this relay (python3, which the node already needs for canaries), which:

- writes every packet to the current run's pcap file as it passes (`<prefix>-0000.pcap`, …: live
  dissection and export read it while the stream runs), then to the current tshark's stdin;
- after `every` packets starts a spare tshark and gives it the pcap header; once the spare has read
  the header and sleeps reading its stdin (its ~1 s of dissector loading is over: its pipe is empty
  (FIONREAD) and /proc/PID/wchan says `pipe_read`), the
  relay closes the current tshark's stdin at a packet boundary, waits for it to print its last line
  and exit, writes a marker line, and feeds the spare from the next packet on.

So every packet reaches exactly one tshark, lines stay in capture order, and nothing runs twice.
The relay itself costs ~0.75 µs of CPU per packet (200k packets from a file into `cat`: 0.16 s,
against tshark's ~8 µs per packet).
The marker, on stdout between the two tsharks' lines (tshark numbers from 1 again after it):
`MARK + "run\t<index>\t<packets in the previous run>"`, or `MARK + "failed\t<exit status>"` when a
spare died before it was ready (the current tshark goes on; another try one budget later).
The relay's exit status is the current tshark's (0 when tcpdump's end ended the stream).
"""

from __future__ import annotations

from typing import Final

MARK: Final = "\x1elabyrinth\t"

SWAP_SCRIPT: Final = r"""
import fcntl, os, struct, subprocess, sys, termios, time
prefix, every, keep, tshark = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4:]
MARK = b"\x1elabyrinth\t"

def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            break
        data += chunk
    return data

header = read_exact(24)
if len(header) < 24:
    sys.exit(0)  # the capture ended before it began
order = "<" if header[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
caplen = struct.Struct(order + "I").unpack_from

def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

def spawn():
    proc = subprocess.Popen(tshark, stdin=subprocess.PIPE, bufsize=0)  # stdout, stderr: ours
    write_all(proc.stdin.fileno(), header)
    return proc

def ready(proc):
    # it read the pcap header we gave it (nothing left in its pipe) and now sleeps reading the pipe:
    # its dissectors are loaded (a wrapper that never reads, or a tshark still loading, is not ready)
    try:
        left = struct.unpack("i", fcntl.ioctl(proc.stdin.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        with open("/proc/%d/wchan" % proc.pid) as f:
            return left == 0 and "pipe_read" in f.read()
    except OSError:
        return False

def path(run):
    return "%s-%04d.pcap" % (prefix, run)

def open_run(run):
    if not prefix:
        return -1
    try:
        fd = os.open(path(run), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        write_all(fd, header)
        return fd
    except OSError as e:
        sys.stderr.write("labyrinth: not recording %s: %s\n" % (path(run), e.strerror))
        return -1

def finish(proc, status=None):
    try:
        proc.stdin.close()
    except OSError:
        pass
    code = proc.wait()
    return code if status is None else status

run, frames, due, spare, checked = 0, 0, 0, None, 0.0
cur, fd = spawn(), open_run(0)

def send(data):
    global fd
    if not data:
        return
    if fd >= 0:
        try:
            write_all(fd, data)  # on disk before tshark prints its line: dissection can read it
        except OSError as e:
            sys.stderr.write("labyrinth: recording stopped: %s\n" % e.strerror)
            os.close(fd)
            fd = -1
    write_all(cur.stdin.fileno(), data)

def swap():
    global run, frames, due, spare, cur, fd
    previous, done = run, frames
    finish(cur)  # it prints every line it owes, then exits: lines stay in order
    if fd >= 0:
        os.close(fd)
    if prefix and not keep:
        try:
            os.unlink(path(previous))
        except OSError:
            pass
    run, frames, due, cur, spare = run + 1, 0, 0, spare, None
    fd = open_run(run)
    write_all(1, MARK + b"run\t%d\t%d\n" % (run, done))

buf = bytearray()
try:
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        buf += chunk
        i, start, n = 0, 0, len(buf)
        while n - i >= 16:
            end = i + 16 + caplen(buf, i + 8)[0]
            if end > n:
                break
            i = end
            frames += 1
            due += 1
            if due < every:
                continue
            if spare is None:
                try:
                    spare = spawn()
                except OSError as e:
                    write_all(1, MARK + b"failed\t%d\n" % (e.errno or 1))
                    due = 0
                continue
            now = time.monotonic()
            if now - checked < 0.02:
                continue
            checked = now
            if spare.poll() is not None:
                write_all(1, MARK + b"failed\t%d\n" % spare.returncode)
                spare, due = None, 0
            elif ready(spare):
                send(bytes(buf[start:i]))
                start = i
                swap()
        send(bytes(buf[start:i]))
        del buf[:i]
except (BrokenPipeError, ConnectionResetError):
    if spare is not None:
        spare.kill()
    sys.exit(finish(cur) or 1)  # tshark died: its status and words (stderr) end the stream
if spare is not None:
    spare.kill()
    spare.wait()
sys.exit(finish(cur))
"""


def swap_argv(prefix: str, every: int, keep: bool, tshark: list[str]) -> list[str]:
    """python3 running the relay: files `<prefix>-NNNN.pcap` ("" records nothing), a fresh tshark every
    `every` packets (kept files when `keep`, else a run's file is deleted when the next one starts)."""
    if prefix and (not prefix.startswith("/") or "\0" in prefix or prefix.endswith("/")):
        raise ValueError(f"a recording needs an absolute path prefix on the node, not {prefix!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"restart tshark after a positive number of packets, not {every!r}")
    if not tshark:
        raise ValueError("the relay needs tshark's argv")
    return ["python3", "-c", SWAP_SCRIPT, prefix, str(every), "1" if keep else "0", *tshark]
