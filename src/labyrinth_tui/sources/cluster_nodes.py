"""An attached cluster's nodes found over SSH — started before the API answers wherever the inventory can."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from labyrinth_tui.cloud.bootstrap.inventory import Inventory, NodeEntry
from labyrinth_tui.cloud.kube.client import NodeInfo
from labyrinth_tui.model.topology import Node
from labyrinth_tui.nodes.connect import HostKeyPrompt
from labyrinth_tui.nodes.errors import NodeError, SudoRefused
from labyrinth_tui.nodes.runner import CommandResult
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.discovery import discover_node


class _AfterApi:
    """A node's session whose answers wait until the API's pods are known: the discovery script runs on
    the node while the API lists, and is parsed with the pods' names once they are there."""

    def __init__(self, session: NodeSession, ready: asyncio.Event) -> None:
        self.session = session
        self.ready = ready

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def address(self) -> str:
        return self.session.address

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = 30.0,
        input: str | None = None,
        check: bool = True,
    ) -> CommandResult:
        result = await self.session.run(argv, timeout=timeout, input=input, check=check)
        await self.ready.wait()
        return result


@dataclass
class NodeDiscovery:
    """Each node's tree over SSH for ClusterSource; `sessions` is the source's (captures reuse them).

    `early()` starts at once on every inventory node that names its address — the API cannot change
    where SSH goes for those: at 21 nodes on 2 cores, importing the Kubernetes client alone took ~2 s of
    `attach`, and discovery as long again after it (bench/attach_scale.py). `discover()` waits for those
    and does the rest, once the API has listed nodes and pods."""

    inventory: Inventory | None
    cluster: str
    sessions: dict[str, NodeSession]
    ssh_timeout: float = 10.0
    ask_host_key: HostKeyPrompt | None = None
    identities: dict[str, tuple[str, str]] = field(default_factory=dict)  # pod IP → (namespace, name)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _early: dict[str, asyncio.Task[Node]] = field(default_factory=dict)

    def entry(self, name: str) -> NodeEntry:
        return (self.inventory.node(name) if self.inventory else None) or NodeEntry(name)

    def privilege(self, name: str) -> tuple[str, ...]:
        return ("sudo", "-n") if self.entry(name).needs_sudo else ()

    def _session(self, entry: NodeEntry, address: str | None) -> NodeSession:
        connector = (self.inventory or Inventory(self.cluster, (entry,))).connector(
            entry, address=address, ask_host_key=self.ask_host_key
        )
        session = NodeSession(entry.name, connector, connect_attempts=1, connect_timeout=self.ssh_timeout)
        self.sessions[entry.name] = session
        return session

    def early(self) -> None:
        """Discovery started now on the inventory's nodes that name their address."""
        for entry in self.inventory.nodes if self.inventory else ():
            if entry.address is None or entry.name in self.sessions:
                continue
            try:
                session = self._session(entry, None)
            except ValueError:
                continue  # said by discover(), for the node the API lists
            runner = _AfterApi(session, self._ready)
            self._early[entry.name] = asyncio.ensure_future(
                discover_node(runner, self.identities, privilege=self.privilege(entry.name))
            )

    def stop(self) -> None:
        """The API failed (or the start was cancelled): what started early stops, now; its sessions are
        the source's to close."""
        for task in self._early.values():
            task.cancel()
        self._early.clear()

    async def discover(
        self, nodes: Sequence[NodeInfo], identities: dict[str, tuple[str, str]]
    ) -> tuple[dict[str, Node], list[SudoRefused]]:
        """Each node's tree (an unreachable Node saying why when it has none), and the nodes whose sudo
        refused the login."""
        self.identities.update(identities)
        self._ready.set()
        listed = {n.name for n in nodes}
        for name in [n for n in self._early if n not in listed]:  # in the inventory, not in the cluster
            self._early.pop(name).cancel()
            with contextlib.suppress(Exception):
                await self.sessions.pop(name).close()

        async def one(info: NodeInfo) -> Node:
            early = self._early.pop(info.name, None)
            if early is not None:
                return await early
            entry = self.entry(info.name)
            try:
                session = self._session(entry, info.internal_ip)
            except ValueError as exc:
                return Node(info.name, info.internal_ip, reachable=False, error=str(exc))
            return await discover_node(session, self.identities, privilege=self.privilege(info.name))

        found = await asyncio.gather(*(one(n) for n in nodes), return_exceptions=True)
        result, refused = {}, []
        for info, node in zip(nodes, found, strict=True):
            if isinstance(node, Node):
                result[info.name] = node
            elif isinstance(node, Exception):
                why = node.reason if isinstance(node, NodeError) else f"{type(node).__name__}: {node}"
                result[info.name] = Node(info.name, info.internal_ip, reachable=False, error=why)
                if isinstance(node, SudoRefused):
                    refused.append(node)
            else:
                raise node
        return result, refused
