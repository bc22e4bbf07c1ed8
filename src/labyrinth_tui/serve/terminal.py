"""One SSH session = one pty and one child process running the app (presenter or follow mode).

Why a pty per viewer and not a Textual driver bound to the asyncssh channel in this process: a Textual
app owns its process (one driver, SIGWINCH, stdout, module-level state), so several apps in one process
would share a loop that one slow render stalls for everyone, the presenter included. A child per
connection isolates that: each viewer has its own TERM, size and loop, runs in a CPU-capped cgroup
(serve/cpu_share.py) at SCHED_IDLE, runs as `nobody` when the server is root (and nobody can read this
Python), and dies with its pty. Measured by `bench/serve_viewers.py` (2 shared cores, 20 viewers on a
5k pkt/s replay): the presenter's wire→screen 21 ms with 20 viewers against 24 ms alone (0.88 ×);
~73 MiB PSS per viewer; viewers' bytes/s low (they redraw on CPU nobody else wants). The cost is
memory; the room sizes that matter (≤ 50) fit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import struct
import sys
import termios
import time
from collections.abc import Callable

import asyncssh

from labyrinth_tui.serve.keys import Person, Role

# what the client's terminal must get back when we end the app under it (alt screen, mouse, cursor)
RESTORE_TERMINAL = b"\x1b[?1049l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?25h\x1b[0m"
PASSED_ENV = ("COLORTERM", "LANG", "LC_ALL", "LC_CTYPE")
KILL_GRACE = 2.0
# a viewer's pty is read at most this often: its frames merge in the pty, so the serve loop does one
# read and one SSH packet per viewer per interval instead of one per app refresh, and the presenter's
# relay (read as soon as it is readable) never queues behind twenty viewers' small writes
VIEWER_READ_INTERVAL = 0.1


def set_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(rows, 1), max(columns, 1), 0, 0))


class AppSession(asyncssh.SSHServerSession[bytes]):
    """Only a shell request with a pty is served (it runs the app); exec and subsystems are refused."""

    def __init__(
        self,
        person: Person,
        peer: str,
        start_child: Callable[[AppSession], None],
        log: Callable[[str], None],
    ) -> None:
        self.person = person
        self.peer = peer
        self.start_child = start_child
        self.log = log
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.term_type = ""
        self.size = (80, 24)
        self.master: int | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.last_input = time.monotonic()
        self.started = time.monotonic()
        self.bytes_sent = 0
        self.closed = False
        self.read_interval = 0.0
        self._paused = False
        self._resting: asyncio.TimerHandle | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: object) -> bool:
        self.term_type = term_type
        self.size = (term_size[0] or 80, term_size[1] or 24)
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.log(f"  refused: exec {command!r} from {self.person.who} at {self.peer}")
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        self.log(f"  refused: subsystem {subsystem!r} from {self.person.who} at {self.peer}")
        return False

    def session_started(self) -> None:
        if not self.term_type:
            self.say("labyrinth serve shows a terminal app: connect with a terminal (ssh -t)")
            return
        self.start_child(self)

    def environment(self) -> dict[str, str]:
        assert self.chan is not None
        asked = self.chan.get_environment()
        env = {name: asked[name] for name in PASSED_ENV if name in asked}
        env.setdefault("LANG", "C.UTF-8")
        env.update(TERM=self.term_type, PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME="/tmp")
        return env

    async def run_child(self, argv: list[str], hub_end: socket.socket, role: Role) -> None:
        """Start the app on a fresh pty; pump its output into the channel honouring SSH flow control."""
        master, slave = os.openpty()
        set_size(slave, *self.size)
        os.set_blocking(master, False)
        self.master = master
        self.read_interval = VIEWER_READ_INTERVAL if role is Role.VIEWER else 0.0
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "labyrinth_tui.serve.child",
                "--role",
                role.value,
                "--hub-fd",
                str(hub_end.fileno()),
                *argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                pass_fds=(hub_end.fileno(),),
                start_new_session=True,
                env=self.environment(),
            )
        finally:
            os.close(slave)
            hub_end.close()
        if self.closed:  # the connection went while the app was starting: nobody will read it
            await self.reap()
            return
        asyncio.get_running_loop().add_reader(master, self._readable)
        status = await self.process.wait()
        self._stop_reading()
        if not self.closed:
            self.closed = True
            if self.chan is not None:
                self.chan.write(RESTORE_TERMINAL)
                self.chan.exit(status if status >= 0 else 1)

    def _readable(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 1 << 17)
        except BlockingIOError:
            return
        except OSError:  # EIO: the app has exited and the pty is gone
            self._stop_reading()
            return
        if self.chan is not None and not self.closed:
            self.bytes_sent += len(data)
            try:
                self.chan.write(data)
            except BrokenPipeError:  # the client went away between two reads
                self._stop_reading()
                return
        if self.read_interval:
            self._stop_reading()
            self._resting = asyncio.get_running_loop().call_later(self.read_interval, self._read_again)

    def _read_again(self) -> None:
        self._resting = None
        if self.master is not None and not self.closed and not self._paused:
            asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _stop_reading(self) -> None:
        if self.master is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self.master)

    def pause_writing(self) -> None:
        # the client is not reading: stop reading the pty, the app blocks on its own writes, and its
        # hub socket fills until the hub counts the viewer's packets instead of queueing them
        self._paused = True
        self._stop_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._resting is None:
            self._read_again()

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self.last_input = time.monotonic()
        if self.master is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self.master, data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.size = (width, height)
        if self.master is not None:
            with contextlib.suppress(OSError):
                set_size(self.master, width, height)  # the kernel sends SIGWINCH to the app

    def say(self, line: str, status: int = 1) -> None:
        """End the session with one clear line to the person."""
        if self.chan is None or self.closed:
            return
        self.closed = True
        self.chan.write(RESTORE_TERMINAL + f"\r\nlabyrinth serve: {line}\r\n".encode())
        self.chan.exit(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        asyncio.get_running_loop().create_task(self.reap())

    async def reap(self) -> None:
        """No process and no pty outlive the connection: TERM, then KILL the app's whole session."""
        self._stop_reading()
        if self._resting is not None:
            self._resting.cancel()
        process = self.process
        if process is not None and process.returncode is None:
            for sig, grace in ((signal.SIGHUP, KILL_GRACE), (signal.SIGKILL, None)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                try:
                    await asyncio.wait_for(process.wait(), grace)
                    break
                except TimeoutError:
                    continue
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None
