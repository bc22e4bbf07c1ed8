"""FakeNode: an in-process asyncssh server on 127.0.0.1 answering by command, for NodeSession tests.

It speaks real SSH. Commands (the exec string, split like a shell would):
  echo WORDS…   prints WORDS          fail N   exits N with a line on stderr
  cat           echoes stdin          hang     never answers
  hold          waits for release()   drop     prints a line, then drops the TCP connection
  setsid -w sh -c … sh ARGV   (a stream) prints a pretend group id, then runs ARGV as above
  sh -c <end group> sh PGID N recorded in `ended_groups`; exits 0 as if the group had ended
  sh -c <reader watcher> sh I D ARGV   (ended_with_reader) runs ARGV as above
Like OpenSSH it refuses the 11th session channel of one connection (MaxSessions 10). A TCP relay in
front of it can go silent (stop passing bytes, keep the sockets open), like a node whose network died.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncssh

Handler = Callable[["FakeNode", asyncssh.SSHServerProcess[str], list[str]], Awaitable[int]]


async def _echo(node: FakeNode, proc: asyncssh.SSHServerProcess[str], argv: list[str]) -> int:
    proc.stdout.write(" ".join(argv[1:]) + "\n")
    return 0


async def _fail(node: FakeNode, proc: asyncssh.SSHServerProcess[str], argv: list[str]) -> int:
    proc.stderr.write("fake: failing as asked\n")
    return int(argv[1])


async def _cat(node: FakeNode, proc: asyncssh.SSHServerProcess[str], argv: list[str]) -> int:
    proc.stdout.write(await proc.stdin.read())
    return 0


async def _hang(node: FakeNode, proc: asyncssh.SSHServerProcess[str], argv: list[str]) -> int:
    # like a command under sshd without a pty: closing the channel does not end it (nor free its
    # session slot); only the end of the whole connection does
    await proc.get_extra_info("connection").wait_closed()
    return 0


async def _hold(node: FakeNode, proc: asyncssh.SSHServerProcess[str], argv: list[str]) -> int:
    await node.released.wait()
    proc.stdout.write("released\n")
    return 0


async def _drop(node: FakeNode, proc: asyncssh.SSHServerProcess[str], argv: list[str]) -> int:
    proc.stdout.write("partial output\n")
    await proc.stdout.drain()
    conn = proc.get_extra_info("connection")
    conn.abort()
    await conn.wait_closed()
    return 0


async def _setsid(node: FakeNode, proc: asyncssh.SSHServerProcess[str], argv: list[str]) -> int:
    # what commands.in_process_group sends: setsid -w sh -c SCRIPT sh ARGV… → a pretend group id, then ARGV
    proc.stdout.write(f"{node.pgid}\n")
    inner = argv[6:]
    handler = HANDLERS.get(inner[0] if inner else "")
    return 127 if handler is None else await handler(node, proc, inner)


async def _sh(node: FakeNode, proc: asyncssh.SSHServerProcess[str], argv: list[str]) -> int:
    # commands.end_process_group: sh -c SCRIPT sh PGID TENTHS → recorded; the group is "gone"
    if len(argv) == 6 and argv[1] == "-c" and "kill" in argv[2]:
        node.ended_groups.append(int(argv[4]))
        return 0
    if len(argv) > 6 and argv[1] == "-c" and argv[2].startswith("i=$1; d=$2;"):
        # commands.ended_with_reader: sh -c SCRIPT sh INTERVAL WORKDIR ARGV… → ARGV as above
        handler = HANDLERS.get(argv[6])
        return 127 if handler is None else await handler(node, proc, argv[6:])
    proc.stderr.write(f"fake: no shell here for {argv!r}\n")
    return 127


HANDLERS: dict[str, Handler] = {
    "setsid": _setsid,
    "sh": _sh,
    "echo": _echo,
    "fail": _fail,
    "cat": _cat,
    "hang": _hang,
    "hold": _hold,
    "drop": _drop,
}


class _Server(asyncssh.SSHServer):
    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.sessions = 0
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.node.connections += 1

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key == self.node.client_key.convert_to_public()

    def session_requested(self) -> Any:
        if self.sessions >= self.node.max_sessions:
            self.node.refused_sessions += 1
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "open failed")
        self.sessions += 1
        self.node.open_sessions += 1
        self.node.peak_sessions_per_connection = max(self.node.peak_sessions_per_connection, self.sessions)
        self.node.changed()
        return asyncssh.SSHServerProcess(self._serve, None, 3, False)

    async def _serve(self, proc: asyncssh.SSHServerProcess[str]) -> None:
        status = 0
        try:
            argv = shlex.split(proc.command or "")
            self.node.commands.append(proc.command or "")
            handler = HANDLERS.get(argv[0] if argv else "")
            if handler is None:
                proc.stderr.write(f"fake: unknown command {proc.command!r}\n")
                status = 127
            else:
                status = await handler(self.node, proc, argv)
        finally:
            # counted down before the exit status goes out, as sshd frees the session before replying
            self.sessions -= 1
            self.node.open_sessions -= 1
            self.node.changed()
        proc.exit(status)


class FakeNode:
    """The fake node; `port` is where clients connect (through the relay)."""

    def __init__(self, tmp: Path, *, max_sessions: int = 10) -> None:
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = tmp / "client_key"
        self.client_key.write_private_key(str(self.client_key_path))
        self.max_sessions = max_sessions
        self.released = asyncio.Event()
        self.connections = 0
        self.open_sessions = 0
        self.peak_sessions_per_connection = 0
        self.refused_sessions = 0
        self.commands: list[str] = []
        self.pgid = 4242
        self.ended_groups: list[int] = []
        self.port = 0
        self._changed = asyncio.Condition()
        self._server: asyncssh.SSHAcceptor | None = None
        self._relay: asyncio.Server | None = None
        self._silent = asyncio.Event()
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def known_hosts_line(self) -> str:
        key = self.host_key.export_public_key("openssh").decode().split()[:2]
        return f"[127.0.0.1]:{self.port} {' '.join(key)}\n"

    def changed(self) -> None:
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    def release(self) -> None:
        self.released.set()

    def go_silent(self) -> None:
        """From now on the relay passes nothing either way, and keeps every socket open."""
        self._silent.set()

    async def start(self) -> FakeNode:
        self._server = await asyncssh.create_server(
            lambda: _Server(self), "127.0.0.1", 0, server_host_keys=[self.host_key], encoding="utf-8"
        )
        backend = self._server.sockets[0].getsockname()[1]
        self._relay = await asyncio.start_server(lambda r, w: self._accept(r, w, backend), "127.0.0.1", 0)
        self.port = self._relay.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, backend: int) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                if self._silent.is_set():
                    await asyncio.Event().wait()  # a dead network: bytes vanish, nothing is closed
                dst.write(data)
                await dst.drain()
        dst.close()

    async def close(self) -> None:
        for task in list(self._pipes):
            task.cancel()
        if self._relay is not None:
            self._relay.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
