"""RemoteStream: a long-running remote command's stdout as lines, and a stop that leaves nothing behind.

Closing an SSH channel does not stop a remote command started without a pty (docs/lab-facts.md: tshark keeps
running, its dumpcap is orphaned). So the command runs in a process group of its own whose id is its
first output line, and stop() sends `kill -TERM -<pgid>` over a second channel, then KILL if needed.
The session hands the stream an opener of Channels and a runner for that second command.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from types import TracebackType

import asyncssh

from labyrinth_tui.nodes.channel import Channel, OpenChannel
from labyrinth_tui.nodes.commands import describe, end_process_group, in_process_group, shell_line
from labyrinth_tui.nodes.errors import CommandFailed, ConnectionLost, NodeError, NodeTimeout
from labyrinth_tui.nodes.runner import CommandRunner

START_TIMEOUT = 15.0
STDERR_KEEP = 8192


class RemoteStream:
    """`async with session.stream(argv) as lines: async for line in lines: …` — stop() on exit.

    `pgid` is the remote process group (known once started); `exit_status` once it ended;
    `stderr_tail` the last 8 KiB of its stderr; `stop_problem` why stop() could not end it all.
    Lines come without their newline.
    """

    def __init__(
        self,
        node: str,
        open_channel: OpenChannel,
        runner: CommandRunner,
        argv: tuple[str, ...],
        timeout: float | None,
        privilege: tuple[str, ...] = (),
    ) -> None:
        self.node = node
        self._open_channel = open_channel
        self._runner = runner
        self.argv = argv
        self.timeout = timeout
        self.privilege = (
            privilege  # prefix for ending the group, e.g. ("sudo", "-n") when argv runs under sudo
        )
        self.pgid: int | None = None
        self.exit_status: int | None = None
        self._stderr: deque[str] = deque()
        self._stderr_size = 0
        self._channel: Channel | None = None
        self._proc: asyncssh.SSHClientProcess[str] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._deadline: float | None = None
        self._stopped = False
        self._ended = False
        self.stop_problem: str | None = None

    @property
    def stderr_tail(self) -> str:
        return "".join(self._stderr)[-STDERR_KEEP:]

    @property
    def _what(self) -> str:
        return describe(self.argv, self.node)

    async def __aenter__(self) -> RemoteStream:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the command; returns once its process group id is known."""
        line = shell_line(in_process_group(self.argv))
        self._channel = await self._open_channel(line)
        self._proc = self._channel.proc
        self._stderr_task = asyncio.create_task(self._drain_stderr(self._proc))
        try:
            first = await asyncio.wait_for(self._proc.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            await self.stop()
            why = f"{self._what} did not start in {START_TIMEOUT:g} s"
            raise NodeTimeout(self.node, why) from None
        except (asyncssh.Error, OSError) as exc:
            await self.stop()
            raise self._channel.failure(exc, self._what) from None
        if not first.strip().isdigit():
            await self.stop()
            status = self.exit_status if self.exit_status is not None else -1
            raise CommandFailed(self.node, self.argv, status, first + self.stderr_tail)
        self.pgid = int(first)
        if self.timeout is not None:
            self._deadline = asyncio.get_running_loop().time() + self.timeout

    async def _drain_stderr(self, proc: asyncssh.SSHClientProcess[str]) -> None:
        # read stderr all along: unread, it would fill the channel window and stall stdout
        with contextlib.suppress(asyncssh.Error, OSError):
            while chunk := await proc.stderr.read(4096):
                self._stderr.append(chunk)
                self._stderr_size += len(chunk)
                while self._stderr_size > STDERR_KEEP and len(self._stderr) > 1:
                    self._stderr_size -= len(self._stderr.popleft())

    def __aiter__(self) -> RemoteStream:
        return self

    async def __anext__(self) -> str:
        line = await self._next(None)
        if line:
            return line.rstrip("\r\n")
        raise StopAsyncIteration

    async def read(self, size: int = 65536) -> str:
        """Up to `size` characters of stdout as they arrive, lines cut anywhere; "" once it ended.

        For high-rate readers (one call per chunk, not per line); raises like iteration does.
        """
        return await self._next(size)

    async def _next(self, size: int | None) -> str:
        """The next line (size None) or chunk of stdout within the deadline; "" once it ended."""
        if self._proc is None or self._channel is None:
            raise RuntimeError("stream not started: use `async with session.stream(argv)`")
        if self._ended or self._stopped:
            return ""
        remaining = None
        if self._deadline is not None:
            remaining = max(0.0, self._deadline - asyncio.get_running_loop().time())
        stdout = self._proc.stdout
        try:
            async with asyncio.timeout(remaining):
                text = await (stdout.readline() if size is None else stdout.read(size))
        except TimeoutError:
            await self.stop()
            raise NodeTimeout(self.node, f"{self._what} ran past its {self.timeout:g} s") from None
        except (asyncssh.Error, OSError) as exc:
            self._ended = True
            raise self._channel.failure(exc, self._what) from None
        if not text:
            await self._at_end()
        return text

    async def _at_end(self) -> None:
        """stdout ended: note the exit status; ConnectionLost if the channel went away instead."""
        assert self._proc is not None and self._channel is not None
        self._ended = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._proc.wait_closed(), 5.0)
        self.exit_status = self._proc.exit_status
        if self.exit_status is None and self._proc.exit_signal is None and not self._stopped:
            lost = self._channel.lost or "the channel closed without an exit status"
            raise ConnectionLost(self.node, f"{self._what}: connection lost ({lost})")

    async def stop(self, grace: float = 3.0) -> None:
        """End the remote process group (TERM; KILL if any is left after `grace` s); free the channel.

        Returns once nothing of the group is left on the node, or with `stop_problem` saying why not.
        Also after the command ended by itself: children it left behind are ended too.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._proc is None or self._channel is None:
            return
        proc, channel = self._proc, self._channel
        try:
            if self.pgid is not None:
                await self._end_group(self.pgid, grace)
            proc.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait_closed(), 5.0)
            if self.exit_status is None:
                self.exit_status = proc.exit_status
        finally:
            if self._stderr_task is not None:
                self._stderr_task.cancel()
            channel.release()

    async def _end_group(self, pgid: int, grace: float) -> None:
        argv = [*self.privilege, *end_process_group(pgid, grace)]
        try:
            ended = await self._runner.run(argv, timeout=2 * grace + 15, check=False)
        except NodeError as exc:  # the node went away: nothing more can be done over SSH
            self.stop_problem = f"could not end process group {pgid}: {exc.reason}"
            return
        if ended.exit_status != 0:
            why = ended.stderr.strip()[-200:] or "it ignored TERM and KILL"
            self.stop_problem = f"process group {pgid} still has processes: {why}"
