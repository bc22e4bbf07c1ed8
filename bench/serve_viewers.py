"""20 viewers of `labyrinth serve` following a 5k pkt/s stream: the presenter's wire→screen, bytes, memory.

Goal (issue 18): with 20 viewers the presenter's wire→screen median stays within 1.2 × of the same
presenter with no viewers (same run); bytes sent per viewer per second and memory per viewer are
reported; anchor: the same app in tmux over one SSH session to OpenSSH's sshd (127.0.0.1 only).

Three processes, so that nothing measured shares a loop with the measuring:
- the server (`--serve`): `Serve` as `labyrinth serve` runs it; it only notes when the presenter's
  replay started the stream (the CAPTURING status, sent the instant the replay starts its clock);
- the presenter's terminal, here: an ssh client on a pty, its frames read and timed;
- the room (`--room`): 20 ssh clients on ptys at SCHED_IDLE, as the audience's laptops would be
  elsewhere (their decrypting and reading is not the server's work; everything server-side is kept).
"wire" is when packet n was due on the replay's clock (start + (n-1)/RATE: the replay emits it then, or
late if the presenter's app is late), "screen" when the presenter's ssh client read the frame drawing it.
Also printed: CPU seconds per second of the server, the presenter's app and all viewers' apps during
the crowded phase, which says where the two cores went.
Run as root (sshd for the anchor): `.venv/bin/python bench/serve_viewers.py`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.busy_bundle import write_busy_bundle  # noqa: E402

from labyrinth_tui.serve.keys import KeyRing, host_key, known_hosts_line, read_keys  # noqa: E402
from labyrinth_tui.serve.server import Serve, ServeConfig  # noqa: E402
from labyrinth_tui.sources.base import StreamState, StreamStatus  # noqa: E402

VIEWERS = 20
RATE = 5_000
PHASE = 8.0  # seconds measured per phase
GOAL = 1.2
TICK = os.sysconf("SC_CLK_TCK")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")
# a packet row: its number, the time when the pane is wide enough for it, the source (10.0.1.15)
ROW = re.compile(rb"(\d+)\s+(?:\d+\.\d{6}\s+)?10\.0\.1\.15")


class Terminal:
    """An ssh client on its own pty (120×40), its output read and timed here."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color"}
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, env=env
        )
        os.close(slave)
        os.set_blocking(self.master, False)
        self.text = b""
        self.bytes = 0
        self.rows: list[tuple[float, int]] = []  # (when read, highest packet number drawn)
        asyncio.get_running_loop().add_reader(self.master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 1 << 16)
        except OSError:
            asyncio.get_running_loop().remove_reader(self.master)
            return
        now = time.monotonic()
        self.bytes += len(data)
        plain = ANSI.sub(b"", data)
        self.text = (self.text + plain)[-20_000:]
        numbers = [int(n) for n in ROW.findall(plain)]
        if numbers:
            self.rows.append((now, max(numbers)))

    async def wait_rows(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not self.rows:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no packet rows; last: {self.text[-400:]!r}")
            await asyncio.sleep(0.05)

    async def wait(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.text:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} never showed; last: {self.text[-400:]!r}")
            await asyncio.sleep(0.05)

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def ssh_argv(port: int, key: Path, known: Path, *command: str) -> list[str]:
    return [
        "ssh", "-tt", "-p", str(port), "-i", str(key), "-o", f"UserKnownHostsFile={known}",
        "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "root@127.0.0.1", *command,
    ]  # fmt: skip


def latencies(term: Terminal, start: float, since: float, until: float) -> list[float]:
    """Each frame read in [since, until]: its time minus when its newest packet was due on the wire."""
    return [when - (start + (number - 1) / RATE) for when, number in term.rows if since <= when <= until]


def status_kb(pid: int, field: str) -> int:
    for line in (
        Path(f"/proc/{pid}/{'smaps_rollup' if field == 'Pss:' else 'status'}").read_text().splitlines()
    ):
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def children(server: int, role: str) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(server), "-f", "--", f"serve.child --role {role}"], capture_output=True
    ).stdout
    return [int(p) for p in out.split()]


async def open_stream(term: Terminal) -> None:
    # the tree shortens long pod names to fit ("wrk-1/node-wrk…6-2zncq" at 120 columns): wait on the start
    await term.wait("wrk-1/node-wrk")
    term.send("\x10")  # ctrl+p
    await term.wait("Search for commands")
    term.send("Open stream node-1 · lxc1ba")
    await term.wait("Open stream node-1")
    await asyncio.sleep(0.3)
    term.send("\r")


async def serve_only(tmp: Path, bundle: Path) -> None:
    """The server process: prints its port, then when the presenter's stream started (monotonic)."""
    os.environ["LABYRINTH_CONFIG_DIR"] = str(tmp / "config")
    keys = KeyRing(read_keys(tmp / "presenter.pub"), read_keys(tmp / "viewer.pub"))
    key = host_key()
    config = ServeConfig("127.0.0.1", 0, key, keys, ["--replay", str(bundle)], 50, 3600, 1000, lambda _: None)
    server = Serve(config)
    publish = server.hub.publish

    def noted(frame: object, data: bytes = b"") -> None:
        if isinstance(frame, StreamStatus) and frame.state is StreamState.CAPTURING:
            print(f"start {time.monotonic()}", flush=True)
        publish(frame, data)  # type: ignore[arg-type]

    server.hub.publish = noted  # type: ignore[method-assign]
    port = await server.start()
    (tmp / "known_hosts").write_text(known_hosts_line(key, "127.0.0.1", port) + "\n")
    print(f"port {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.close()


async def room(tmp: Path, port: int) -> None:
    """The audience: VIEWERS ssh clients at SCHED_IDLE; says `ready`, then bytes/s per viewer on `measure`."""
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    viewers = [Terminal(ssh_argv(port, tmp / "viewer", tmp / "known_hosts")) for _ in range(VIEWERS)]
    try:
        for each in viewers:
            await each.wait_rows()
        print("ready", flush=True)
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.readline()
        sent = [v.bytes for v in viewers]
        await asyncio.sleep(PHASE)
        per_second = statistics.mean((v.bytes - b) / PHASE for v, b in zip(viewers, sent, strict=True))
        print(f"bytes {per_second}", flush=True)
        await reader.readline()
    finally:
        for each in viewers:
            each.close()


async def line_from(process: asyncio.subprocess.Process, word: str, timeout: float = 300) -> str:
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout)).decode()
        if not line:
            raise RuntimeError(f"{word!r}: the process ended")
        if line.startswith(word):
            return [*line.split(), ""][1]


async def ours(tmp: Path, bundle: Path) -> dict[str, float]:
    presenter_key, _ = keygen(tmp / "presenter"), keygen(tmp / "viewer")
    me = [sys.executable, __file__]
    server = await asyncio.create_subprocess_exec(
        *me, "--serve", str(tmp), str(bundle), stdout=subprocess.PIPE
    )
    crowd: asyncio.subprocess.Process | None = None
    front: Terminal | None = None
    try:
        port = int(await line_from(server, "port"))
        front = Terminal(ssh_argv(port, presenter_key, tmp / "known_hosts"))
        await open_stream(front)
        start = float(await line_from(server, "start"))
        await front.wait_rows()
        await asyncio.sleep(1.0)
        presenter = children(server.pid, "presenter")
        before_alone = cpu_seconds(presenter)
        since = time.monotonic()
        await asyncio.sleep(PHASE)
        alone = latencies(front, start, since, time.monotonic())
        cpu_alone = (cpu_seconds(presenter) - before_alone) / (time.monotonic() - since)
        if not alone:
            raise RuntimeError(f"no packet rows read from the presenter: {front.text[-600:]!r}")
        serve_before = status_kb(server.pid, "VmRSS:")
        crowd = await asyncio.create_subprocess_exec(
            *me, "--room", str(tmp), str(port), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        await line_from(crowd, "ready")
        await asyncio.sleep(1.0)
        viewers = children(server.pid, "viewer")
        used = [cpu_seconds([server.pid]), cpu_seconds(presenter), cpu_seconds(viewers)]
        assert crowd.stdin is not None
        crowd.stdin.write(b"measure\n")
        since = time.monotonic()
        per_second = float(await line_from(crowd, "bytes"))
        until = time.monotonic()
        crowded = latencies(front, start, since, until)
        cpu = [
            (after - before) / (until - since)
            for before, after in zip(
                used,
                [cpu_seconds([server.pid]), cpu_seconds(presenter), cpu_seconds(viewers)],
                strict=True,
            )
        ]
        pss = sum(status_kb(pid, "Pss:") for pid in viewers) / len(viewers)
        rss = sum(status_kb(pid, "VmRSS:") for pid in viewers) / len(viewers)
        hub = (status_kb(server.pid, "VmRSS:") - serve_before) / VIEWERS
        crowd.stdin.write(b"done\n")
        await crowd.wait()
        return {
            "alone": statistics.median(alone),
            "crowded": statistics.median(crowded),
            "frames": len(crowded),
            "bytes": per_second,
            "pss": (pss + hub) / 1024,
            "rss": (rss + hub) / 1024,
            "cpu_serve": cpu[0],
            "cpu_presenter": cpu[1],
            "cpu_alone": cpu_alone,
            "cpu_viewers": cpu[2],
        }
    finally:
        if crowd is not None and crowd.returncode is None:
            crowd.kill()
            await crowd.wait()
        if front is not None:
            front.close()
        server.send_signal(signal.SIGTERM)
        await server.wait()


async def anchor(tmp: Path, bundle: Path) -> float:
    """The same app (`labyrinth replay` on the same stream) in tmux, over one session to OpenSSH's sshd."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    key = keygen(tmp / "anchor")
    hostkey = keygen(tmp / "anchor_host")
    (tmp / "authorized").write_text((tmp / "anchor.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    Path("/run/sshd").mkdir(exist_ok=True)
    daemon = subprocess.Popen(
        [sshd, "-D", "-e", "-p", str(port), "-o", "ListenAddress=127.0.0.1", "-h", str(hostkey),
         "-o", f"AuthorizedKeysFile={tmp / 'authorized'}", "-o", "StrictModes=no", "-o", "UsePAM=no",
         "-o", "PermitRootLogin=prohibit-password", "-o", "PidFile=none", "-f", "/dev/null"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    known = tmp / "anchor_known"
    algorithm, data = (tmp / "anchor_host.pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{port} {algorithm} {data}\n")
    socket_name = f"sv-anchor-{os.getpid()}"
    app = f"env -u COLUMNS -u LINES {sys.executable} -m labyrinth_tui replay {bundle}"
    term = None
    try:
        await asyncio.sleep(0.5)  # why: sshd has no readiness signal with -D and no pid file
        cmd = f"cd {ROOT} && TERM=xterm-256color tmux -L {socket_name} new-session -s a '{app}'"
        term = Terminal(ssh_argv(port, key, known, cmd))
        await open_stream(term)
        await term.wait_rows()
        await asyncio.sleep(1.0)
        before = term.bytes
        await asyncio.sleep(PHASE)
        return (term.bytes - before) / PHASE
    finally:
        if term is not None:
            term.close()
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True, check=False)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(10)


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sw-bench-") as folder:
        tmp = Path(folder)
        bundle = write_busy_bundle(tmp / "busy", rate=RATE, seconds=120)
        got = await ours(tmp, bundle)
        anchor_bytes = await anchor(tmp, bundle)
    ratio = got["crowded"] / got["alone"]
    alone, crowded, frames = got["alone"] * 1000, got["crowded"] * 1000, got["frames"]
    print(f"presenter wire→screen median: {alone:.1f} ms alone, {crowded:.1f} ms with {VIEWERS} viewers "
          f"({frames:.0f} frames) = {ratio:.2f} ×  (goal ≤ {GOAL} ×)")  # fmt: skip
    print(f"bytes/s per viewer: {got['bytes'] / 1024:.1f} KiB/s; "
          f"anchor (the app in tmux over OpenSSH's sshd): {anchor_bytes / 1024:.1f} KiB/s")  # fmt: skip
    print(f"memory per viewer: {got['pss']:.1f} MiB PSS ({got['rss']:.1f} MiB RSS), "
          "its app + its share of the hub")  # fmt: skip
    print(f"CPU (cores): presenter's app {got['cpu_alone']:.2f} alone; with {VIEWERS} viewers: "
          f"presenter's app "
          f"{got['cpu_presenter']:.2f}, server {got['cpu_serve']:.2f}, all viewers' apps "
          f"{got['cpu_viewers']:.2f} (SCHED_IDLE); load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    if ratio > GOAL:
        print(f"MISSED: {ratio:.2f} × > {GOAL} ×")
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        asyncio.run(serve_only(Path(sys.argv[2]), Path(sys.argv[3])))
    elif sys.argv[1:2] == ["--room"]:
        asyncio.run(room(Path(sys.argv[2]), int(sys.argv[3])))
    else:
        sys.exit(asyncio.run(main()))
