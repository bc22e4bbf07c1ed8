"""The capture relay between tcpdump and tshark, run on a node as `python3 -c` (probes/capture_swap.py).

Its parts: relay_wire (the pcap stream in, the markers out), relay_run (a tshark run and its file), and
this file: tcpdump's side, the queue that feeds tshark without ever blocking the recording, the loop."""

# It runs on the node's own python3, not in our environment: the standard library only, no annotations.
# mypy: ignore-errors
# ruff: noqa: E401, I001, UP031, RUF005, SIM105

import fcntl, os, re, select, signal, socket, subprocess, sys, time
from collections import deque

from relay_run import Run, finish, ready, spawn
from relay_wire import MAX_RECORD, caplen_reader, die, emit, marker, read_exact, status

prefix, every, keep, ncap = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
own = bytes.fromhex(sys.argv[5])  # the stream's canary frame ("": none to send)
capture, tshark = sys.argv[6 : 6 + ncap], sys.argv[6 + ncap :]
ASK_EVERY = 1.0  # seconds between SIGUSR1s asking tcpdump for its counts
DROPS = re.compile(rb"(\d+) packets? dropped by kernel")
# a spare not ready by then is given up (killed; another try one budget later); tests shorten it
SPARE_WAIT = float(os.environ.get("LABYRINTH_RELAY_SPARE_WAIT", "15"))
MEMORY = 64 << 20  # unrecorded bytes held for tshark before the relay stops reading stdin
STRETCH = 256 << 10  # a queued stretch of a run's file grows to this, then the next one starts
SAY_EVERY = 0.5  # seconds between "behind" markers
SAY_AFTER = 0.5  # tshark is behind once the oldest packet it has not been given waited this long
CANARY = bytes.fromhex("026c61627972")  # a readiness canary's destination MAC
canaries = set()  # the canaries' sources seen so far
CANARY_EVERY, CANARY_MAX = 0.1, 100  # our own canary: one each 0.1 s once tcpdump listens, 10 s at most
canary_out, canary_sent, canary_at = None, 0, 0.0


cap, errfd, errbuf, listening, kernel_drops, told_drops = None, -1, b"", False, 0, 0
if capture:
    # we start tcpdump ourselves: its pid to ask for counts (SIGUSR1), its stderr to read them from
    try:
        pipe = subprocess.PIPE
        cap = subprocess.Popen(capture, stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe)
    except OSError as e:
        sys.stderr.write("labyrinth relay: cannot start %s: %s\n" % (capture[0], e.strerror))
        sys.exit(127)
    os.dup2(cap.stdout.fileno(), 0)
    cap.stdout.close()
    errfd = cap.stderr.fileno()
    os.set_blocking(errfd, False)


def capture_said(chunk):
    # tcpdump's stderr: its answers to our SIGUSR1 ("tcpdump: A packets captured, B packets received by
    # filter, C packets dropped by kernel", one line) are read and not passed on; everything else is
    # (its errors, and its final counts at exit: three lines of its own)
    global errbuf, listening, kernel_drops
    errbuf += chunk
    *lines, errbuf = errbuf.split(b"\n")
    if not chunk and errbuf:
        lines, errbuf = lines + [errbuf], b""
    for line in lines:
        found = DROPS.search(line)
        if found:
            kernel_drops = max(kernel_drops, int(found.group(1)))
        if line.startswith(b"tcpdump: listening on"):
            listening = True
        if not (found and line.startswith(b"tcpdump: ") and b"packets captured," in line):
            os.write(2, line + b"\n")


def read_capture_err():
    global errfd
    try:
        chunk = os.read(errfd, 1 << 14)
    except BlockingIOError:
        return
    capture_said(chunk)
    if not chunk:
        os.close(errfd)
        errfd = -1


def drain_capture(wait):
    # tcpdump's last words, until its stderr ends (it has exited) or `wait` seconds
    until = time.monotonic() + wait
    while errfd >= 0 and time.monotonic() < until:
        if select.select([errfd], [], [], max(0.0, until - time.monotonic()))[0]:
            read_capture_err()


header = read_exact(24)
if len(header) < 24:
    drain_capture(5)
    sys.exit(0)  # the capture ended before it began
caplen = caplen_reader(header)


def feeding(proc):
    global curfd
    curfd = proc.stdin.fileno()
    fcntl.fcntl(curfd, fcntl.F_SETFL, fcntl.fcntl(curfd, fcntl.F_GETFL) | os.O_NONBLOCK)
    return proc


try:
    cur = feeding(spawn(tshark, header))
except OSError as e:
    die("cannot start %s: %s" % (tshark[0], e.strerror), 127)
run, due, spare, checked = Run(0, prefix, header, caplen), 0, None, 0.0
# what tshark has not been given yet, oldest first: [kind, what, start, end, packets, since], kind
# "file" (a stretch of run `what`'s file), "mem" (bytes, when they are not in a file) or "swap"
queue = deque()
held = 0  # bytes of "mem" stretches
recorded = fed = 0  # packets


def take(data, packets):
    # a whole number of packets: into the run's file first, then to tshark (or queued for it)
    global recorded, fed, held
    recorded += packets
    run.frames += packets
    on_disk = run.write(data, packets)
    sent = 0
    if not queue:
        try:
            sent = os.write(curfd, data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            fed += packets
            return
    now = time.monotonic()
    if on_disk:
        end = run.size
        begin = end - len(data) + sent
        last = queue[-1] if queue else None
        if last and last[0] == "file" and last[1] is run and last[3] == begin and end - last[2] <= STRETCH:
            last[3] = end
            last[4] += packets
        else:
            queue.append(["file", run, begin, end, packets, now])
    else:
        rest = bytes(data[sent:])
        held += len(rest)
        queue.append(["mem", rest, 0, len(rest), packets, now])


def feed():
    # as much of the queue as tshark's pipe takes now; never waits
    global fed, held
    while queue:
        item = queue[0]
        kind = item[0]
        if kind == "swap":
            swap(item[1], item[2])
            queue.popleft()
            continue
        if kind == "file":
            data = os.pread(item[1].rfd, min(item[3] - item[2], 1 << 16), item[2])
            if not data:  # cannot happen (the file only grows while queued); never spin on it
                queue.popleft()
                fed += item[4]
                continue
        else:
            data = memoryview(item[1])[item[2] : item[2] + (1 << 16)]
        try:
            sent = os.write(curfd, data)
        except BlockingIOError:
            return
        item[2] += sent
        if kind == "mem":
            held -= sent
        if item[2] >= item[3]:
            queue.popleft()
            fed += item[4]
        elif sent < len(data):
            return


def swap(new, old):
    # every packet of `old` has reached the current tshark: let it finish, then feed `new`
    global cur
    ended = finish(cur)  # it prints every line it owes, then exits: lines stay in order
    old.done()
    cur = feeding(new)
    emit(b"run", old.index + 1, old.frames, ended)
    if prefix and not keep:
        try:
            os.unlink(old.path)
        except OSError:
            pass


def give_up(code):
    global spare, due
    emit(b"failed", code)
    spare, due = None, 0


said = False


def say(now):
    # how far behind tshark is, when it is (only if stdout has room: never block on the reader)
    global said
    lag = recorded - fed
    waited = now - queue[0][5] if queue and lag else 0.0
    if waited < SAY_AFTER and not said:
        return
    if not select.select([], [1], [], 0)[1]:
        return
    behind = waited >= SAY_AFTER
    os.write(1, marker(b"behind", lag if behind else 0, int(waited * 1000) if behind else 0))
    said = behind


buf = bytearray()
eof, last_say, last_ask = False, time.monotonic(), 0.0
try:
    while not (eof and not queue):
        reading = [0] if not eof and held < MEMORY else []
        reading += [errfd] if errfd >= 0 else []
        sending = own and canary_sent < CANARY_MAX
        wait = CANARY_EVERY if sending else SAY_EVERY
        readable, writable, _ = select.select(reading, [curfd] if queue else [], [], wait)
        if errfd in readable:
            read_capture_err()
        if 0 in readable:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                eof = True
            else:
                buf += chunk
                i, start, n, batch = 0, 0, len(buf), 0
                found = []
                while n - i >= 16:
                    size = 16 + caplen(buf, i + 8)[0]
                    if size > MAX_RECORD:
                        die("a pcap record of %d bytes: the stream is corrupt" % size, 2)
                    if i + size > n:
                        break
                    if size >= 28 and buf.startswith(CANARY, i + 16):
                        source = bytes(buf[i + 22 : i + 28]).hex()
                        if source not in canaries:
                            canaries.add(source)
                            found.append(source)
                    i += size
                    due += 1
                    batch += 1
                    if due < every:
                        continue
                    if spare is None:
                        try:
                            spare = spawn(tshark, header)
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
                        take(buf[start:i], batch)
                        start, batch = i, 0
                        run.close()
                        queue.append(["swap", spare, run, 0, 0, time.monotonic()])
                        run, due, spare = run.next(), 0, None
                    elif now - spare.started > SPARE_WAIT:
                        spare.kill()
                        spare.wait()
                        give_up(-1)
                if i > start:
                    take(buf[start:i], batch)
                del buf[:i]
                for source in found:  # in the file by now (or it failed, and the app was told)
                    emit(b"canary", source.encode())
                    if prefix:
                        try:
                            flag = "%s-canary-%s" % (prefix, source)
                            os.close(os.open(flag, os.O_WRONLY | os.O_CREAT, 0o600))
                        except OSError:
                            pass
        if queue:
            feed()
        now = time.monotonic()
        if now - last_say >= SAY_EVERY:
            last_say = now
            say(now)
        if cap is not None and listening and now - last_ask >= ASK_EVERY and cap.poll() is None:
            last_ask = now  # not reaped yet (poll said it runs): the pid is still tcpdump's
            os.kill(cap.pid, signal.SIGUSR1)
        if kernel_drops != told_drops and select.select([], [1], [], 0)[1]:
            told_drops = kernel_drops  # only when stdout has room: never block the capture on it
            os.write(1, marker(b"dropped", kernel_drops))
        if sending and listening and now - canary_at >= CANARY_EVERY:
            # our canary on the interface itself, the moment tcpdump listens: no round trip from the
            # app to send one, and it stops once the recording has it
            canary_at, canary_sent = now, canary_sent + 1
            if own[6:12].hex() in canaries:
                own, canary_sent = b"", CANARY_MAX
            else:
                try:
                    if canary_out is None:
                        canary_out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                        canary_out.bind((capture[capture.index("-i") + 1], 0))
                    canary_out.send(own)
                except (OSError, ValueError, IndexError) as e:
                    why = getattr(e, "strerror", None) or e
                    sys.stderr.write("labyrinth relay: canary not sent: %s\n" % why)
                    own, canary_sent = b"", CANARY_MAX  # the app's own sender tries, and says why
except (BrokenPipeError, ConnectionResetError):
    if spare is not None:
        spare.kill()
    sys.exit(finish(cur) or 1)  # tshark died: its status and words (stderr) end the stream
if said:
    say(time.monotonic())
drain_capture(5)
if kernel_drops != told_drops:
    emit(b"dropped", kernel_drops)
if cap is not None:
    try:
        cap.wait(5)
    except subprocess.TimeoutExpired:
        pass
if spare is not None:
    spare.kill()
    spare.wait()
sys.exit(finish(cur))
