"""A tshark run of the relay: its process (started, ready, finished) and its file of the recording.

Part of the capture relay that runs on a node (capture_relay.py; probes/capture_swap.py ships the parts).
"""

# It runs on the node's own python3, not in our environment: the standard library only, no annotations.
# mypy: ignore-errors
# ruff: noqa: E401, I001, UP031, SIM105

import fcntl, os, struct, subprocess, sys, termios, time

from relay_wire import emit, status, write_all


def spawn(tshark, header):
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


def finish(proc):
    try:
        proc.stdin.close()
    except OSError:
        pass
    return status(proc.wait())


class Run:
    # one tshark run's file (`<prefix>-NNNN.pcap`; prefix "": no file): whole records only, written as
    # packets arrive; tshark is fed back from it (rfd). On a write error it is cut back to its last
    # whole record, recording stops for this run, and the app is told how many records the file holds
    def __init__(self, index, prefix, header, caplen):
        self.index, self.wfd, self.rfd, self.size, self.records, self.frames = index, -1, -1, 0, 0, 0
        self.prefix, self.header, self.caplen = prefix, header, caplen
        self.path = "%s-%04d.pcap" % (prefix, index)
        if not prefix:
            return
        try:
            self.wfd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self.rfd = os.open(self.path, os.O_RDONLY)
            write_all(self.wfd, header)
            self.size = 24
        except OSError as e:
            self.fail(e)

    def next(self):
        return Run(self.index + 1, self.prefix, self.header, self.caplen)

    def write(self, data, records):
        # True when data is in the file (from offset size - len(data))
        if self.wfd < 0:
            return False
        try:
            write_all(self.wfd, data)
            self.size += len(data)
            self.records += records
            return True
        except OSError as e:
            self.salvage(data, e)
            return False

    def salvage(self, data, error):
        # back to the last whole record, then the batch's records one by one while they fit
        try:
            os.ftruncate(self.wfd, self.size)
            os.lseek(self.wfd, self.size, os.SEEK_SET)
            i = 0
            while i + 16 <= len(data):
                size = 16 + self.caplen(data, i + 8)[0]
                write_all(self.wfd, data[i : i + size])
                self.size += size
                self.records += 1
                i += size
        except OSError as e:
            error = e
        self.fail(error)

    def fail(self, error):
        sys.stderr.write("labyrinth relay: recording %s stopped: %s\n" % (self.path, error.strerror))
        if self.wfd >= 0:
            try:
                os.ftruncate(self.wfd, self.size)
            except OSError:
                pass
            os.close(self.wfd)
            self.wfd = -1
        if self.size < 24:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        emit(b"unrecorded", self.index, self.records)

    def close(self):
        # no more packets for this run (its queued stretches may still be read back)
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1

    def done(self):
        # tshark has had all of it
        self.close()
        if self.rfd >= 0:
            os.close(self.rfd)
            self.rfd = -1
