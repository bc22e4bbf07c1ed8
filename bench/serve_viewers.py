"""20 viewers of `labyrinth serve` following a 5k pkt/s stream: the presenter's wire→screen, bytes, memory.

Goal (issue 18): with 20 viewers the presenter's wire→screen median stays within 1.2 × of the same
presenter with no viewers (same run); bytes sent per viewer per second and memory per viewer are
reported; anchor: the same app in tmux over one SSH session to OpenSSH's sshd (127.0.0.1 only).
"wire" is when the presenter's source emitted the packet (the hub timestamps each batch it gets),
"screen" when the presenter's ssh client read the frame that draws that packet's row.
Run as root (sshd for the anchor): `.venv/bin/python bench/serve_viewers.py`.
"""

from __future__ import annotations

import asyncio
import bisect
import fcntl
import os
import re
import shutil
import signal
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
from labyrinth_tui.sources.base import PacketBatch  # noqa: E402

VIEWERS = 20
RATE = 5_000
PHASE = 8.0  # seconds measured per phase
GOAL = 1.2
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")
ROW = re.compile(rb"(\d+)\s+\d+\.\d{6}\s+10\.0\.1\.15")


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

    async def wait_rows(self, timeout: float = 120) -> None:
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


def latencies(term: Terminal, wire: list[tuple[int, float]], since: float, until: float) -> list[float]:
    firsts = [first for first, _ in wire]
    out = []
    for when, number in term.rows:
        if since <= when <= until:
            i = bisect.bisect_right(firsts, number) - 1
            if i >= 0:
                out.append(when - wire[i][1])
    return out


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def open_stream(term: Terminal) -> None:
    await term.wait("wrk-1/node-wrk-1-ubuntu24")
    term.send("\x10")  # ctrl+p
    await term.wait("Search for commands")
    term.send("Open stream node-1 · lxc1ba")
    await term.wait("Open stream node-1")
    await asyncio.sleep(0.3)
    term.send("\r")


async def ours(tmp: Path, bundle: Path) -> tuple[float, float, float, float, float]:
    os.environ["LABYRINTH_CONFIG_DIR"] = str(tmp / "config")
    presenter, viewer = keygen(tmp / "presenter"), keygen(tmp / "viewer")
    (tmp / "audience").write_text((tmp / "viewer.pub").read_text())
    keys = KeyRing(read_keys(tmp / "presenter.pub"), read_keys(tmp / "audience"))
    key = host_key()
    config = ServeConfig("127.0.0.1", 0, key, keys, ["--replay", str(bundle)], 50, 3600, 1000, lambda _: None)
    server = Serve(config)
    wire: list[tuple[int, float]] = []
    publish = server.hub.publish

    def timed(frame: object) -> None:
        if isinstance(frame, PacketBatch) and frame.packets:
            wire.append((frame.packets[0].number, time.monotonic()))
        publish(frame)  # type: ignore[arg-type]

    server.hub.publish = timed  # type: ignore[method-assign]
    port = await server.start()
    known = tmp / "known_hosts"
    known.write_text(known_hosts_line(key, "127.0.0.1", port) + "\n")
    terms: list[Terminal] = []
    try:
        front = Terminal(ssh_argv(port, presenter, known))
        terms.append(front)
        await open_stream(front)
        await front.wait_rows()
        await asyncio.sleep(1.0)
        start = time.monotonic()
        await asyncio.sleep(PHASE)
        alone = latencies(front, wire, start, time.monotonic())
        if not alone:
            raise RuntimeError(
                f"no packet rows read from the presenter: {front.text[-600:]!r} {len(wire)} batches"
            )
        hub_before = rss_kb(os.getpid())
        viewers = [Terminal(ssh_argv(port, viewer, known)) for _ in range(VIEWERS)]
        terms.extend(viewers)
        for each in viewers:
            await each.wait_rows()
        await asyncio.sleep(1.0)
        sent = [v.bytes for v in viewers]
        start = time.monotonic()
        await asyncio.sleep(PHASE)
        crowded = latencies(front, wire, start, time.monotonic())
        per_second = statistics.mean((v.bytes - b) / PHASE for v, b in zip(viewers, sent, strict=True))
        pids = subprocess.run(
            ["pgrep", "-P", str(os.getpid()), "-f", "--", "serve.child --role viewer"], capture_output=True
        ).stdout.split()
        memory = (sum(rss_kb(int(p)) for p in pids) + rss_kb(os.getpid()) - hub_before) / VIEWERS / 1024
        return statistics.median(alone), statistics.median(crowded), per_second, memory, len(crowded)
    finally:
        for term in terms:
            term.close()
        await server.close()


async def anchor(tmp: Path, bundle: Path) -> float:
    """The same app (`labyrinth replay` on the same stream) in tmux, over one session to OpenSSH's sshd."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    key = keygen(tmp / "anchor")
    hostkey = keygen(tmp / "anchor_host")
    (tmp / "authorized").write_text((tmp / "anchor.pub").read_text())
    with tempfile.NamedTemporaryFile() as probe:
        del probe
    import socket

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
    known.write_text(f"[127.0.0.1]:{port} {(tmp / 'anchor_host.pub').read_text().split()[0]} "
                     f"{(tmp / 'anchor_host.pub').read_text().split()[1]}\n")  # fmt: skip
    socket_name = f"sv-anchor-{os.getpid()}"
    app = f"env -u COLUMNS -u LINES {sys.executable} -m labyrinth_tui replay {bundle}"
    term = None
    try:
        await asyncio.sleep(0.5)
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
    with tempfile.TemporaryDirectory(prefix="sv-bench-") as folder:
        tmp = Path(folder)
        bundle = write_busy_bundle(tmp / "busy", rate=RATE, seconds=90)
        alone, crowded, per_second, memory, samples = await ours(tmp, bundle)
        anchor_bytes = await anchor(tmp, bundle)
    ratio = crowded / alone
    print(f"presenter wire→screen median: {alone * 1000:.1f} ms alone, "
          f"{crowded * 1000:.1f} ms with {VIEWERS} viewers ({samples} frames) = {ratio:.2f} ×  "
          f"(goal ≤ {GOAL} ×)")  # fmt: skip
    print(f"bytes/s per viewer: {per_second / 1024:.1f} KiB/s; anchor (the app in tmux over OpenSSH's sshd): "
          f"{anchor_bytes / 1024:.1f} KiB/s")  # fmt: skip
    print(f"memory per viewer: {memory:.1f} MiB (its app's RSS + its share of the hub)")
    if ratio > GOAL:
        print(f"MISSED: {ratio:.2f} × > {GOAL} ×")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
