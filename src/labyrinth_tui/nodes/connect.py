"""Connectors: how an SSH connection to a node opens (TCP for cloud VMs, a socket in a netns for lab nodes).

Both keep host keys checked: the lab's are pinned from its state; a cloud VM's come from the user's
known_hosts, an unknown one is asked about once through a callback, a changed one is refused.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncssh

from labyrinth_tui.nodes.commands import validate_netns
from labyrinth_tui.nodes.errors import HostKeyRejected, NodeError, NodeTimeout, NodeUnreachable

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
LostCallback = Callable[[Exception | None], None]


class NodeClient(asyncssh.SSHClient):
    """Tells the session when its connection ends, and remembers a host key that was not trusted."""

    def __init__(self, on_lost: LostCallback | None = None) -> None:
        self._on_lost = on_lost
        self.untrusted_key: tuple[str, str, int, asyncssh.SSHKey] | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._on_lost is not None:
            self._on_lost(exc)

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        # asyncssh asks only about keys not in known_hosts; we refuse here and decide after the attempt,
        # where the UI's answer can be awaited
        self.untrusted_key = (host, addr, port, key)
        return False


class Connector(Protocol):
    """Opens one SSH connection to a node; NodeSession calls it for each connection of its pool."""

    @property
    def address(self) -> str: ...

    async def open(
        self, node: str, on_lost: LostCallback, options: Mapping[str, Any]
    ) -> asyncssh.SSHClientConnection: ...


def connect_error(node: str, exc: BaseException, where: str) -> NodeError:
    """A failure while opening a connection, as the typed error a person can act on."""
    if isinstance(exc, NodeError):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return HostKeyRejected(node, f"host key of {where} refused: {exc.reason}")
    if isinstance(exc, asyncssh.PermissionDenied):
        return NodeUnreachable(node, f"authentication to {where} failed: {exc.reason}", retryable=False)
    if isinstance(exc, asyncssh.KeyImportError):
        return NodeUnreachable(node, f"client key unreadable: {exc}", retryable=False)
    if isinstance(exc, TimeoutError):
        return NodeTimeout(node, f"no SSH answer from {where} in time")
    if isinstance(exc, asyncssh.DisconnectError):
        return NodeUnreachable(node, f"{where} closed the connection: {exc.reason}")
    if isinstance(exc, OSError):
        # asyncio's "Connect call failed (…)" hides the errno's words ("Connection refused")
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        return NodeUnreachable(node, f"cannot connect to {where}: {why}")
    return NodeUnreachable(node, f"cannot connect to {where}: {type(exc).__name__}: {exc}")


# --- cloud VMs: plain TCP -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostKeyQuestion:
    """What the UI shows when a node presents a key known_hosts has never seen."""

    node: str
    host: str
    port: int
    key_type: str
    fingerprint: str  # SHA256:…


HostKeyPrompt = Callable[[HostKeyQuestion], Awaitable[bool]]


@dataclass(eq=False)
class TcpConnector:
    """A node reached over TCP; ~/.ssh/config, ssh-agent and the user's keys apply as with `ssh`."""

    host: str
    port: int | None = None  # None: from ~/.ssh/config, else 22
    username: str | None = None  # None: from ~/.ssh/config, else the local user
    client_keys: Sequence[str] | None = None  # None: the agent and ~/.ssh/id_*
    known_hosts_path: Path = field(default_factory=lambda: Path.home() / ".ssh" / "known_hosts")
    ask_host_key: HostKeyPrompt | None = None  # None: an unknown host key is refused
    config_paths: Sequence[str] | None = None  # None: ~/.ssh/config
    _decisions: dict[tuple[str, int, str], bool] = field(default_factory=dict, repr=False)
    _asking: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def address(self) -> str:
        return self.host

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port or 22}"

    def _known_hosts(self) -> asyncssh.SSHKnownHosts:
        try:
            return asyncssh.import_known_hosts(self.known_hosts_path.read_text())
        except FileNotFoundError:
            return asyncssh.import_known_hosts("")

    async def _attempt(self, client: NodeClient, options: Mapping[str, Any]) -> asyncssh.SSHClientConnection:
        extra: dict[str, Any] = {}
        if self.username is not None:
            extra["username"] = self.username
        if self.client_keys is not None:
            extra["client_keys"] = list(self.client_keys)
        if self.config_paths is not None:
            extra["config"] = list(self.config_paths)
        return await asyncssh.connect(
            self.host,
            self.port or (),
            known_hosts=self._known_hosts(),
            client_factory=lambda: client,
            **extra,
            **options,
        )

    async def open(
        self, node: str, on_lost: LostCallback, options: Mapping[str, Any]
    ) -> asyncssh.SSHClientConnection:
        client = NodeClient(on_lost)
        try:
            return await self._attempt(client, options)
        except asyncssh.HostKeyNotVerifiable as exc:
            if client.untrusted_key is None:  # revoked, or a certificate problem: nothing to ask about
                raise connect_error(node, exc, self._where) from None
            await self._decide(node, *client.untrusted_key)
        except Exception as exc:
            raise connect_error(node, exc, self._where) from None
        try:  # accepted: the key is in known_hosts now, and must still be the one presented
            return await self._attempt(NodeClient(on_lost), options)
        except Exception as exc:
            raise connect_error(node, exc, self._where) from None

    async def _decide(self, node: str, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> None:
        fingerprint = key.get_fingerprint("sha256")
        known_port = None if port == 22 else port
        trusted = asyncssh.match_known_hosts(self._known_hosts(), host, addr, known_port)[0]
        if trusted:
            old = ", ".join(k.get_fingerprint("sha256") for k in trusted)
            raise HostKeyRejected(
                node,
                f"host key of {host} CHANGED: it presents {fingerprint}, known_hosts has {old}. "
                f"If the node was rebuilt, remove the old entry (ssh-keygen -R {host}) and connect again.",
            )
        async with self._asking:  # several connections may hit the same unknown key at once: ask once
            decision_key = (host, port, fingerprint)
            accepted = self._decisions.get(decision_key)
            if accepted is None:
                question = HostKeyQuestion(node, host, port, key.get_algorithm(), fingerprint)
                accepted = bool(await self.ask_host_key(question)) if self.ask_host_key else False
                self._decisions[decision_key] = accepted
                if accepted:
                    self._remember(host, port, key)
        if not accepted:
            why = "refused" if self.ask_host_key else "unknown and no one to ask"
            raise HostKeyRejected(node, f"host key of {host} ({fingerprint}) {why}")

    def _remember(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        pattern = host if port == 22 else f"[{host}]:{port}"
        key_type, blob = key.export_public_key("openssh").decode().split()[:2]
        path = self.known_hosts_path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        needs_newline = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        with path.open("a") as out:
            out.write(("\n" if needs_newline else "") + f"{pattern} {key_type} {blob}\n")


# --- lab nodes: a socket opened inside the node's netns -------------------------------------------


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _connect_inside(netns: str, address: str, port: int, timeout: float) -> socket.socket:
    """In THIS thread: enter `netns`, connect, come back. The socket stays in `netns`."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / netns, os.O_RDONLY)
        try:
            _setns(target)
            try:
                return socket.create_connection((address, port), timeout=timeout)
            finally:
                _setns(home)
        finally:
            os.close(target)
    finally:
        os.close(home)


async def socket_in_netns(netns: str, address: str, port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP socket connected from inside netns `netns`; nothing is added to the root namespace.

    Runs in a thread of its own that ends afterwards: setns changes the calling thread, and a pooled
    thread that failed to come back would run someone else's work inside the lab.
    """
    validate_netns(netns)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[socket.socket] = loop.create_future()

    def deliver(sock: socket.socket | None, exc: BaseException | None) -> None:
        if done.cancelled():  # nobody waits any more: do not leak the socket
            if sock is not None:
                sock.close()
        elif exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(sock)  # type: ignore[arg-type]

    def work() -> None:
        try:
            sock = _connect_inside(netns, address, port, timeout)
        except BaseException as exc:  # handed to the awaiting task, not lost
            loop.call_soon_threadsafe(deliver, None, exc)
        else:
            loop.call_soon_threadsafe(deliver, sock, None)

    threading.Thread(target=work, name=f"netns-connect:{netns}", daemon=True).start()
    return await done


@dataclass(frozen=True, slots=True)
class NetnsConnector:
    """A lab node: sshd listening inside netns `netns`, host key pinned from the lab's state."""

    netns: str
    address: str
    port: int
    username: str
    client_key_path: str
    host_key_line: str  # "ssh-ed25519 AAAA… [comment]"

    def __post_init__(self) -> None:
        validate_netns(self.netns)
        asyncssh.import_public_key(self.host_key_line)  # a bad pin fails here, not at the first connect

    @property
    def _where(self) -> str:
        return f"{self.address}:{self.port} in netns {self.netns}"

    async def open(
        self, node: str, on_lost: LostCallback, options: Mapping[str, Any]
    ) -> asyncssh.SSHClientConnection:
        timeout = float(options.get("connect_timeout", 10.0))
        if not (NETNS_DIR / self.netns).exists():
            raise NodeUnreachable(node, f"netns {self.netns} does not exist (is the lab up?)")
        try:
            sock = await socket_in_netns(self.netns, self.address, self.port, timeout)
        except Exception as exc:
            raise connect_error(node, exc, self._where) from None
        pinned = asyncssh.import_public_key(self.host_key_line)
        try:
            return await asyncssh.connect(
                sock=sock,
                username=self.username,
                client_keys=[self.client_key_path],
                known_hosts=([pinned], [], []),
                agent_path=None,  # the lab's key only: the user's agent has no business here
                config=None,  # nor has ~/.ssh/config
                client_factory=lambda: NodeClient(on_lost),
                **options,
            )
        except asyncssh.HostKeyNotVerifiable:
            sock.close()
            raise HostKeyRejected(
                node, f"{self._where} presents a host key other than the lab's pinned one"
            ) from None
        except Exception as exc:
            sock.close()
            raise connect_error(node, exc, self._where) from None
