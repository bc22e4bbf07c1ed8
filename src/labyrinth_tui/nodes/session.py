"""NodeSession: run and stream commands on one node over asyncssh, on the running event loop.

One connection per node; its channels are pooled below OpenSSH's MaxSessions (10), and a second
connection opens only when more channels are needed at once. Keepalive notices a silent node within
~15 s; a lost connection is reopened (with backoff) by the next command. Every failure is a NodeError.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import asyncssh

from labyrinth_tui.nodes.channel import Channel
from labyrinth_tui.nodes.commands import describe, shell_line
from labyrinth_tui.nodes.connect import Connector, connect_error
from labyrinth_tui.nodes.errors import CommandFailed, ConnectionLost, NodeError, NodeTimeout
from labyrinth_tui.nodes.runner import CommandResult, StreamRunner
from labyrinth_tui.nodes.stream import RemoteStream

__all__ = ["CommandResult", "NodeSession", "RemoteStream"]

# OpenSSH refuses the 11th session channel of a connection (MaxSessions 10); stay below it
CHANNELS_PER_CONNECTION = 8
CLOSE_WAIT = 5.0


@dataclass(eq=False)
class _Link:
    """One SSH connection of the pool and the channels it carries now."""

    ready: asyncio.Future[None]
    capacity: int
    conn: asyncssh.SSHClientConnection | None = None
    in_use: int = 0
    lost: str | None = None
    opener: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def usable(self) -> bool:
        return self.lost is None and self.in_use < self.capacity


class NodeSession:
    """Commands on node `name`, reached through `connector`. Use as `async with NodeSession(...) as s:`."""

    def __init__(
        self,
        name: str,
        connector: Connector,
        *,
        channels_per_connection: int = CHANNELS_PER_CONNECTION,
        max_connections: int = 3,
        keepalive_interval: float = 5.0,
        keepalive_count_max: int = 2,  # asyncssh gives up after interval × (count_max + 1) = 15 s
        connect_timeout: float = 10.0,
        connect_attempts: int = 3,
        backoff: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        self._name = name
        self.connector = connector
        self._per_connection = max(1, channels_per_connection)
        self._max_connections = max(1, max_connections)
        self._options: dict[str, Any] = {
            "keepalive_interval": keepalive_interval,
            "keepalive_count_max": keepalive_count_max,
            "connect_timeout": connect_timeout,
        }
        self._attempts = max(1, connect_attempts)
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._links: list[_Link] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self.connections_opened = 0  # over the session's life; a reconnect adds one

    # --- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def address(self) -> str:
        return self.connector.address

    @property
    def open_connections(self) -> int:
        return sum(1 for link in self._links if link.lost is None and link.conn is not None)

    def __repr__(self) -> str:
        return f"NodeSession({self._name!r}, connections={self.open_connections})"

    # --- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> NodeSession:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the first connection now (otherwise the first command does)."""
        self._release(await self._acquire())

    async def close(self) -> None:
        """Close every connection; commands still running get ConnectionLost."""
        self._closed = True
        links, self._links = self._links, []
        for link in links:
            link.lost = link.lost or "session closed"
            if link.opener is not None and not link.opener.done():
                link.opener.cancel()
            if link.conn is not None:
                link.conn.close()
        for link in links:
            if link.conn is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(link.conn.wait_closed(), CLOSE_WAIT)
        self._wake()

    # --- the pool ---------------------------------------------------------------------------
    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _acquire(self) -> _Link:
        """A channel slot on a connection that is open (or opening), waiting while all are full."""
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise ConnectionLost(self._name, "session closed")
            # no await between looking and reserving: the loop runs one task at a time
            link = next((link for link in self._links if link.usable), None)
            if link is None and len(self._links) < self._max_connections:
                link = _Link(ready=loop.create_future(), capacity=self._per_connection)
                self._links.append(link)
                link.opener = asyncio.create_task(self._open(link))
            if link is not None:
                break
            waiter = loop.create_future()
            self._waiters.append(waiter)
            await waiter
        link.in_use += 1
        try:
            await asyncio.shield(link.ready)
        except BaseException:
            self._release(link)
            raise
        return link

    def _release(self, link: _Link) -> None:
        link.in_use -= 1
        if link.lost is not None and link.in_use <= 0 and link.conn is not None:
            link.conn.close()  # retired (or lost): close it once its last channel is done
        self._wake()

    def _retire(self, link: _Link, reason: str) -> None:
        """No new channels on link; it closes when its last channel is done.

        Why: sshd keeps a session slot while its command runs, even after we close the channel, so a
        timed-out command would hold one of MaxSessions for ever; closing the connection frees it.
        """
        self._forget(link, reason)

    def _forget(self, link: _Link, reason: str) -> None:
        link.lost = link.lost or reason
        if link in self._links:
            self._links.remove(link)
        self._wake()

    def _on_lost(self, link: _Link, exc: Exception | None) -> None:
        reason = str(exc) if exc is not None else "connection closed"
        self._forget(link, reason or type(exc).__name__)

    async def _open(self, link: _Link) -> None:
        """Open link's connection, retrying transient failures with exponential backoff."""
        delay = self._backoff
        error: NodeError | None = None
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(delay)  # backoff before trying a failing node again
                delay = min(delay * 2, self._backoff_max)
            try:
                conn = await self.connector.open(
                    self._name, lambda exc: self._on_lost(link, exc), self._options
                )
            except asyncio.CancelledError:
                self._forget(link, "session closed")
                if not link.ready.done():
                    link.ready.set_exception(ConnectionLost(self._name, "session closed"))
                raise
            except Exception as exc:
                error = connect_error(self._name, exc, self.address)
                if not error.retryable:
                    break
                continue
            link.conn = conn
            self.connections_opened += 1
            if self._closed:
                conn.close()
            link.ready.set_result(None)
            return
        assert error is not None
        self._forget(link, error.reason)
        link.ready.set_exception(error)
        link.ready.exception()  # retrieved: a pool nobody waits on must not log it

    def _failure(self, link: _Link, exc: BaseException, what: str) -> NodeError:
        """An error on an open connection: lost if the connection is gone, else what asyncssh said."""
        if isinstance(exc, NodeError):
            return exc
        if link.lost is not None or (link.conn is not None and link.conn.is_closed()):
            self._forget(link, f"{type(exc).__name__}: {exc}")
            return ConnectionLost(self._name, f"{what}: connection lost ({link.lost})")
        return ConnectionLost(self._name, f"{what}: {type(exc).__name__}: {exc}")

    async def _process(self, line: str, *, input: str | None) -> tuple[_Link, asyncssh.SSHClientProcess[str]]:
        """A new channel running `line`; retried on another connection if the node refuses the channel."""
        for _ in range(3):
            link = await self._acquire()
            assert link.conn is not None
            try:
                stdin: Any = asyncssh.DEVNULL if input is None else asyncssh.PIPE
                proc: asyncssh.SSHClientProcess[str] = await link.conn.create_process(
                    line, input=input, stdin=stdin, encoding="utf-8", errors="replace"
                )
                return link, proc
            except asyncssh.ChannelOpenError as exc:
                self._release(link)
                if link.conn.is_closed():
                    raise self._failure(link, exc, "opening a channel") from None
                # the node allows fewer sessions than we assumed: use what it allows, then ask elsewhere
                link.capacity = max(1, link.in_use)
            except BaseException as exc:
                self._release(link)
                if isinstance(exc, Exception):
                    raise self._failure(link, exc, "opening a channel") from None
                raise
        raise ConnectionLost(self._name, "the node refused every new channel (MaxSessions?)")

    # --- commands ---------------------------------------------------------------------------
    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = 30.0,
        input: str | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run argv to its end. NodeTimeout after `timeout` s; CommandFailed if `check` and rc is not 0."""
        args = tuple(argv)
        line = shell_line(args)
        what = describe(args, self._name)
        link, proc = await self._process(line, input=input)
        try:
            try:
                async with asyncio.timeout(timeout):
                    stdout, stderr = await proc.communicate()
            except TimeoutError:
                self._retire(link, f"{what} timed out")
                raise NodeTimeout(self._name, f"{what} still running after {timeout:g} s") from None
            except (asyncssh.Error, OSError) as exc:
                raise self._failure(link, exc, what) from None
            finally:
                proc.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait_closed(), CLOSE_WAIT)
            status = proc.exit_status
            if status is None:
                signal = proc.exit_signal
                if signal is None:
                    raise ConnectionLost(
                        self._name, f"{what}: connection lost ({link.lost or 'no exit status'})"
                    )
                status, stderr = -1, f"{stderr}killed by signal {signal[0]}\n"
        finally:
            self._release(link)
        result = CommandResult(args, status, stdout or "", stderr or "")
        if check and status != 0:
            raise CommandFailed(self._name, args, status, result.stderr)
        return result

    def stream(
        self, argv: Sequence[str], *, timeout: float | None = None, privilege: Sequence[str] = ()
    ) -> RemoteStream:
        """argv's stdout line by line, in a process group of its own; see RemoteStream.

        `privilege` prefixes the command that ends the group on stop(), e.g. ("sudo", "-n") when argv
        runs under sudo: an unprivileged kill cannot reach root's processes.
        """
        return RemoteStream(self._name, self._channel, self, tuple(argv), timeout, tuple(privilege))

    async def _channel(self, line: str) -> Channel:
        """A Channel running `line` for a RemoteStream: its failures and its release go through this pool."""
        link, proc = await self._process(line, input=None)
        return Channel(
            proc,
            lost=lambda: link.lost,
            failure=lambda exc, what: self._failure(link, exc, what),
            release=lambda: self._release(link),
        )


if TYPE_CHECKING:  # mypy proves NodeSession is what probes are typed against

    def _is_a_stream_runner(session: NodeSession) -> StreamRunner:
        return session
