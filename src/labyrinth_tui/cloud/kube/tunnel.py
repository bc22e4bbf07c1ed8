"""ApiTunnel: the API server (node-0:6443, internal only) through an SSH local port forward on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import asyncssh

from labyrinth_tui.cloud.kube.client import context_cluster
from labyrinth_tui.cloud.kube.errors import KubeConfigError
from labyrinth_tui.nodes.connect import Connector, connect_error
from labyrinth_tui.nodes.errors import NodeError, NodeUnreachable

# every kubeadm API server certificate names "kubernetes"; 127.0.0.1, the tunnel's end, it does not
API_SERVER_NAME: Final = "kubernetes"


def api_endpoint(config: Mapping[str, Any], context: str | None = None) -> tuple[str, int]:
    """(host, port) of the API server the kubeconfig's context points at (https://10.168.0.2:6443)."""
    _, cluster = context_cluster(dict(config), context)
    server = str(cluster.get("server") or "")
    parts = urlsplit(server)
    if parts.scheme != "https" or not parts.hostname:
        raise KubeConfigError(f"the context's server {server!r} is not an https:// address")
    return parts.hostname, parts.port or 443


class ApiTunnel:
    """`async with ApiTunnel(connector, "node-0", "10.168.0.2") as tunnel:` then talk to `tunnel.url`.

    A connection of its own (not a NodeSession's): it lives as long as the API client uses it, and
    the listener is on 127.0.0.1 only, on a port the system picks.
    """

    def __init__(self, connector: Connector, node: str, dest_host: str, dest_port: int = 6443) -> None:
        self.connector = connector
        self.node = node
        self.dest_host = dest_host
        self.dest_port = dest_port
        self.port = 0
        self.lost: str | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._listener: asyncssh.SSHListener | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _on_lost(self, exc: Exception | None) -> None:
        self.lost = str(exc) if exc is not None else "connection closed"

    async def open(self) -> str:
        options = {"connect_timeout": 15.0, "keepalive_interval": 15.0, "keepalive_count_max": 3}
        self._conn = await self.connector.open(self.node, self._on_lost, options)
        try:
            self._listener = await self._conn.forward_local_port(
                "127.0.0.1", 0, self.dest_host, self.dest_port
            )
        except (asyncssh.Error, OSError) as exc:
            await self.close()
            where = f"{self.dest_host}:{self.dest_port}"
            raise NodeUnreachable(
                self.node, f"cannot forward a local port to the API server {where}: {exc}"
            ) from None
        self.port = self._listener.get_port()
        return self.url

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(asyncssh.Error, OSError):
                await self._listener.wait_closed()
            self._listener = None
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(asyncssh.Error, OSError):
                await self._conn.wait_closed()
            self._conn = None

    async def __aenter__(self) -> ApiTunnel:
        try:
            await self.open()
        except NodeError:
            raise
        except Exception as exc:
            raise connect_error(self.node, exc, self.connector.address) from None
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
