"""The node-side relay between tcpdump and tshark: records each packet, and swaps tshark at a packet boundary.

tshark's memory grows ~0.8 KB per packet for as long as it runs (docs/lab-facts.md; its own `-M` session reset
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
The relay itself costs ~0.9 µs of CPU per packet, recording included (`bench/capture_relay.py`),
against tshark's ~8 µs per packet.
Markers, on stdout between tshark's lines (tshark numbers from 1 again after a "run" one):
- `MARK + "run\t<index>\t<packets in the previous run>\t<its tshark's exit status>"`;
- `MARK + "failed\t<status>"`: a spare died, or was not ready within 15 s (-1) and was killed; the
  current tshark goes on, another try one budget later;
- `MARK + "unrecorded\t<run>\t<records>"`: writing run's file failed (a full disk): the file was cut
  back to its first <records> packets, and records no more of that run.
The relay's exit status is the current tshark's (0 when tcpdump's end ended the stream; 127 when
tshark cannot be started; 128+N when tshark died of signal N; 2 when stdin is not a pcap stream).
"""

from __future__ import annotations

from typing import Final

MARK: Final = "\x1elabyrinth\t"

SWAP_SCRIPT: Final = r"""
import fcntl, os, struct, subprocess, sys, termios, time
prefix, every, keep, tshark = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4:]
MARK = b"\x1elabyrinth\t"
# a spare not ready by then is given up (killed; another try one budget later); tests shorten it
SPARE_WAIT = float(os.environ.get("LABYRINTH_RELAY_SPARE_WAIT", "15"))

def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            break
        data += chunk
    return data

def die(message, code):
    sys.stderr.write("labyrinth relay: %s\n" % message)
    sys.exit(code)

header = read_exact(24)
if len(header) < 24:
    sys.exit(0)  # the capture ended before it began
ORDERS = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",  # micro-, nanoseconds
          b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}
if header[:4] not in ORDERS:
    die("not a pcap stream on stdin", 2)
caplen = struct.Struct(ORDERS[header[:4]] + "I").unpack_from
MAX_RECORD = 16 + 262144

def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

def emit(*words):
    write_all(1, MARK + b"\t".join(b"%s" % w if isinstance(w, bytes) else b"%d" % w for w in words) + b"\n")

def status(code):
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says

def spawn():
    proc = subprocess.Popen(tshark, stdin=subprocess.PIPE, bufsize=0)  # stdout, stderr: ours
    proc.started, proc.cpu, proc.still = time.monotonic(), -1, 0.0
    write_all(proc.stdin.fileno(), header)
    return proc

def ready(proc):
    # it read the pcap header we gave it (nothing left in its pipe) and sleeps reading the pipe: its
    # dissectors are loaded (a wrapper that never reads, or a tshark still loading, is not ready)
    try:
        left = struct.unpack("i", fcntl.ioctl(proc.stdin.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        if left:
            return False
        with open("/proc/%d/wchan" % proc.pid) as f:
            wchan = f.read().strip()
        if "pipe_read" in wchan or "pipe_wait" in wchan:  # pipe_wait: kernels before 5.5
            return True
        if wchan not in ("", "0"):
            return False
        # no kernel symbols: ready once its CPU time has stood still for 0.3 s
        with open("/proc/%d/stat" % proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu, now = int(fields[11]) + int(fields[12]), time.monotonic()
        if cpu != proc.cpu:
            proc.cpu, proc.still = cpu, now
        return now - proc.still >= 0.3
    except (OSError, ValueError, IndexError):
        return False

def path(run):
    return "%s-%04d.pcap" % (prefix, run)

class Recorder:
    # the run's file: whole records only; on a write error it is cut back to its last whole record,
    # recording stops for this run, and the app is told how many records the file holds
    def __init__(self, run):
        self.run, self.fd, self.size, self.records = run, -1, 0, 0
        if not prefix:
            return
        try:
            self.fd = os.open(path(run), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            write_all(self.fd, header)
            self.size = 24
        except OSError as e:
            self.fail(e)

    def write(self, data, records):
        if self.fd < 0:
            return
        try:
            write_all(self.fd, data)  # on disk before tshark prints its line: dissection can read it
            self.size += len(data)
            self.records += records
        except OSError as e:
            self.salvage(data, e)

    def salvage(self, data, error):
        # back to the last whole record, then the batch's records one by one while they fit
        try:
            os.ftruncate(self.fd, self.size)
            os.lseek(self.fd, self.size, os.SEEK_SET)
            i = 0
            while i + 16 <= len(data):
                size = 16 + caplen(data, i + 8)[0]
                write_all(self.fd, data[i : i + size])
                self.size += size
                self.records += 1
                i += size
        except OSError as e:
            error = e
        self.fail(error)

    def fail(self, error):
        sys.stderr.write("labyrinth relay: recording %s stopped: %s\n" % (path(self.run), error.strerror))
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = -1
        if self.size < 24:
            try:
                os.unlink(path(self.run))
            except OSError:
                pass
        emit(b"unrecorded", self.run, self.records)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

def finish(proc):
    try:
        proc.stdin.close()
    except OSError:
        pass
    return status(proc.wait())

try:
    cur = spawn()
except OSError as e:
    die("cannot start %s: %s" % (tshark[0], e.strerror), 127)
run, frames, due, spare, checked = 0, 0, 0, None, 0.0
recorder = Recorder(0)

def send(data, records):
    if data:
        recorder.write(data, records)
        write_all(cur.stdin.fileno(), data)

def swap():
    global run, frames, due, spare, cur, recorder
    done, ended = frames, finish(cur)  # it prints every line it owes, then exits: lines stay in order
    recorder.close()
    run, frames, due, cur, spare = run + 1, 0, 0, spare, None
    recorder = Recorder(run)
    emit(b"run", run, done, ended)
    if prefix and not keep:
        try:
            os.unlink(path(run - 1))
        except OSError:
            pass

def give_up(code):
    global spare, due
    emit(b"failed", code)
    spare, due = None, 0

buf = bytearray()
try:
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        buf += chunk
        i, start, n, batch = 0, 0, len(buf), 0
        while n - i >= 16:
            size = 16 + caplen(buf, i + 8)[0]
            if size > MAX_RECORD:
                die("a pcap record of %d bytes: the stream is corrupt" % size, 2)
            if i + size > n:
                break
            i += size
            frames += 1
            due += 1
            batch += 1
            if due < every:
                continue
            if spare is None:
                try:
                    spare = spawn()
                except OSError as e:
                    give_up(e.errno or 1)
                continue
            now = time.monotonic()
            if now - checked < 0.02:
                continue
            checked = now
            if spare.poll() is not None:
                give_up(status(spare.returncode))
            elif ready(spare):
                send(bytes(buf[start:i]), batch)
                start, batch = i, 0
                swap()
            elif now - spare.started > SPARE_WAIT:
                spare.kill()
                spare.wait()
                give_up(-1)
        send(bytes(buf[start:i]), batch)
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
