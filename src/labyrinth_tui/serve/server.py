"""The SSH server: keys only, one app per session, presenter or viewer; limits; who comes and goes."""

from __future__ import annotations

import asyncio
import socket
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

import asyncssh

from labyrinth_tui.serve.cpu_share import ViewerCpu
from labyrinth_tui.serve.keys import KeyRing, Person, Role
from labyrinth_tui.serve.terminal import AppSession
from labyrinth_tui.sources.follow import FollowHub


@dataclass
class ServeConfig:
    host: str
    port: int
    host_key: asyncssh.SSHKey
    keys: KeyRing
    source_argv: list[str]  # how the presenter's child builds its source (--replay DIR | --prefix P)
    max_viewers: int = 50
    idle_timeout: float = 900.0
    connections_per_minute: int = 20  # per address
    log: Callable[[str], None] = print


@dataclass
class RateLimit:
    """At most `per_minute` connections from one address in any 60 s."""

    per_minute: int
    seen: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, address: str) -> bool:
        now = time.monotonic()
        recent = self.seen.setdefault(address, deque())
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return False
        recent.append(now)
        return True


class Serve:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.hub = FollowHub(on_drop=self._dropped)
        self.rate = RateLimit(config.connections_per_minute)
        self.viewers: dict[int, AppSession] = {}
        self.presenter: AppSession | None = None
        # every session whose app may still run, admitted or not, being reaped or not: stopping the
        # server ends them all (an idle viewer's reap cut short by the stop had left its app running)
        self.sessions: weakref.WeakSet[AppSession] = weakref.WeakSet()
        self._numbers = iter(range(1, 1 << 62))
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._idle: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.viewer_cpu = ViewerCpu()
        self._viewer_argv: list[str] = []

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    def log(self, line: str) -> None:
        self.config.log(line)

    async def start(self) -> int:
        """Listen; returns the port (an ephemeral one if the config said 0)."""
        self._acceptor = await asyncssh.create_server(
            lambda: _Connection(self),
            self.config.host,
            self.config.port,
            server_host_keys=[self.config.host_key],
            encoding=None,
            line_editor=False,  # the app reads raw keys; asyncssh's line editor would echo them
            session_factory=None,
            allow_pty=True,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_scp=False,
            sftp_factory=None,
            password_auth=False,
            kbdint_auth=False,
            login_timeout=30,
            keepalive_interval=30,
            keepalive_count_max=4,
        )
        self._idle = asyncio.create_task(self._reap_idle())
        group = self.viewer_cpu.make()
        self._viewer_argv = ["--cpu-group", str(group)] if group is not None else []
        return int(self._acceptor.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._acceptor is not None:
            self._acceptor.close()
        sessions = list(self.sessions)
        for session in sessions:
            session.say("the server is stopping", 0)
        # at once: one grace period for the room, not one per person
        await asyncio.gather(*(session.reap() for session in sessions))
        self.viewer_cpu.remove()

    def session_for(self, person: Person, peer: str) -> AppSession:
        session = AppSession(person, peer, self._start_child, self.log)
        self.sessions.add(session)
        return session

    def _start_child(self, session: AppSession) -> None:
        """Admit the session (one presenter at a time, at most max_viewers) and start its app."""
        server_end, child_end = socket.socketpair()
        if session.person.role is Role.PRESENTER:
            if self.presenter is not None and not self.presenter.closed:
                session.say(f"a presenter is already connected ({self.presenter.person.who}); try later")
                return
            self.presenter = session
            self._spawn(self._presenter(session, server_end, child_end))
            return
        if len(self.viewers) >= self.config.max_viewers:
            self.log(f"  refused: the room is full ({self.config.max_viewers}) for {session.person.who}")
            session.say(f"the room is full ({self.config.max_viewers} viewers); try again later")
            return
        number = next(self._numbers)
        self.viewers[number] = session
        self._spawn(self._viewer(number, session, server_end, child_end))

    async def _presenter(
        self, session: AppSession, server_end: socket.socket, child_end: socket.socket
    ) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=server_end)
        hub = asyncio.create_task(self.hub.serve_presenter(reader, writer))
        try:
            await session.run_child(self.config.source_argv, child_end, Role.PRESENTER)
        finally:
            hub.cancel()
            if self.presenter is session:
                self.presenter = None

    async def _viewer(
        self, number: int, session: AppSession, server_end: socket.socket, child_end: socket.socket
    ) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=server_end)
        hub = asyncio.create_task(self.hub.serve_viewer(number, reader, writer))
        try:
            await session.run_child(self._viewer_argv, child_end, Role.VIEWER)
        finally:
            hub.cancel()
            self.viewers.pop(number, None)

    def _dropped(self, number: int, reason: str) -> None:
        session = self.viewers.pop(number, None)
        if session is not None:
            self.log(f"  dropped viewer {session.person.who} at {session.peer}: {reason}")
            session.say(reason)
            self._spawn(session.reap())

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.config.idle_timeout / 4))
            now = time.monotonic()
            for number, session in list(self.viewers.items()):
                if now - session.last_input > self.config.idle_timeout:
                    self.viewers.pop(number, None)
                    idle = int(now - session.last_input)
                    self.log(
                        f"  idle viewer {session.person.who} at {session.peer}: disconnected after {idle} s"
                    )
                    session.say(f"no key pressed for {idle} s: disconnected (reconnect any time)")
                    await session.reap()


class _Connection(asyncssh.SSHServer):
    """One TCP connection: rate-limited by address, authenticated by key only."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = "?"
        self.person: Person | None = None
        self.since = time.monotonic()

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.address = str(peer[0])

    def connection_lost(self, exc: Exception | None) -> None:
        if self.person is not None:
            stayed = int(time.monotonic() - self.since)
            self.serve.log(f"- {self.person.role} {self.person.who} from {self.peer} left after {stayed} s")

    def begin_auth(self, username: str) -> bool:
        if not self.serve.rate.allow(self.address):
            self.serve.log(f"  refused: too many connections from {self.address}")
            assert self.conn is not None
            self.conn.disconnect(
                asyncssh.DISC_TOO_MANY_CONNECTIONS, "too many connections from your address: wait a minute"
            )
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        person = self.serve.config.keys.person(key)
        if person is None:
            return False
        self.person = person  # OpenSSH signs with the key it just had accepted: this one
        return True

    def auth_completed(self) -> None:
        assert self.person is not None
        self.since = time.monotonic()
        viewers = len(self.serve.viewers)
        self.serve.log(f"+ {self.person.role} {self.person.who} from {self.peer} ({viewers} viewers before)")

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        assert self.person is not None
        return self.serve.session_for(self.person, self.peer)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        self.serve.log(f"  refused: forwarding to {dest_host}:{dest_port} from {self.peer}")
        raise asyncssh.ChannelOpenError(
            asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "labyrinth serve forwards no ports"
        )

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self.serve.log(f"  refused: remote forwarding {listen_host}:{listen_port} from {self.peer}")
        return False
