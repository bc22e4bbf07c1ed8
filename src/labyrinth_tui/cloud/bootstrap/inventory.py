"""Inventory: the cluster's VMs and how SSH reaches each — an inventory file for any VMs, or `gcp up`'s nodes.

cluster: labyrinth
api_via: node-0            # reach the API server (internal 6443) through SSH on this node
known_hosts: ~/.config/labyrinth/clusters/labyrinth/known_hosts   # default ~/.ssh/known_hosts
nodes:                     # the first is the control plane unless one says role: control-plane
  - name: node-0
    address: 34.86.10.2    # what SSH connects to (attach's default: the node's InternalIP)
    internal_ip: 10.168.0.2
    user: ubuntu
    key: ~/.ssh/id_ed25519
    port: 22
    sudo: true             # commands run behind `sudo -n` (the default unless user is root)
    # netns: labyrinth.node-0  # only `labyrinth lab inventory` writes it: sshd listens inside that netns
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import asyncssh
import yaml

from labyrinth_tui.cloud.safe_yaml import YamlError, read_yaml_file, safe_load
from labyrinth_tui.model.decode import short
from labyrinth_tui.nodes.commands import UnsafeArgument, validate_netns
from labyrinth_tui.nodes.connect import Connector, HostKeyPrompt, NetnsConnector, TcpConnector

if TYPE_CHECKING:
    from labyrinth_tui.cloud.gcp.spec import NodeAccess

ROLES: Final = ("control-plane", "worker")
_NODE_KEYS: Final = {"name", "address", "internal_ip", "user", "key", "port", "role", "netns", "sudo"}
_TOP_KEYS: Final = {"cluster", "api_via", "known_hosts", "ssh_config", "nodes"}
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_USER_RE: Final = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
_HOST_RE: Final = re.compile(r"[A-Za-z0-9.:_-]{1,253}")


class InventoryError(ValueError):
    """The inventory cannot be used as it is; the message names the file, the node and the field."""


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One VM. Unset fields fall back: address → the node's internal IP; user, key, port → ~/.ssh/config."""

    name: str
    address: str | None = None
    internal_ip: str | None = None
    user: str | None = None
    key: str | None = None
    port: int | None = None
    role: str = "worker"
    netns: str | None = None  # a lab node: its sshd is reached by a socket opened inside this netns
    sudo: bool | None = None  # as the inventory says; unset: needed unless the user is root

    @property
    def needs_sudo(self) -> bool:
        """Commands run behind `sudo -n`: as the inventory says, else unless we log in as root."""
        return self.sudo if self.sudo is not None else self.user != "root"


@dataclass(frozen=True, slots=True)
class Inventory:
    cluster: str
    nodes: tuple[NodeEntry, ...]
    api_via: str | None = None
    known_hosts: str | None = None
    ssh_config: bool = True  # False: ~/.ssh/config is not read (the GCP nodes carry all they need)
    source: str = field(default="", compare=False)

    def node(self, name: str) -> NodeEntry | None:
        return next((n for n in self.nodes if n.name == name), None)

    @property
    def control_plane(self) -> NodeEntry:
        return next((n for n in self.nodes if n.role == "control-plane"), self.nodes[0])

    @property
    def workers(self) -> list[NodeEntry]:
        control = self.control_plane
        return [n for n in self.nodes if n is not control]

    def connector(
        self, node: NodeEntry, *, address: str | None = None, ask_host_key: HostKeyPrompt | None = None
    ) -> Connector:
        """How SSH reaches `node`: its address (or `address`, e.g. the API's InternalIP), user, key, port."""
        host = node.address or address or node.internal_ip
        if not host:
            raise InventoryError(f"{self.source or 'inventory'}: {node.name} has no address to reach it by")
        if node.netns is not None:
            return self._netns_connector(node, host)
        extra: dict[str, Any] = {}
        if self.known_hosts:
            extra["known_hosts_path"] = Path(self.known_hosts).expanduser()
        return TcpConnector(
            host,
            node.port,
            username=node.user,
            client_keys=[str(Path(node.key).expanduser())] if node.key else None,
            ask_host_key=ask_host_key,
            config_paths=None if self.ssh_config else [],
            **extra,
        )

    def _netns_connector(self, node: NodeEntry, host: str) -> NetnsConnector:
        """A lab node: the host key is pinned from known_hosts (no one is asked), the key is required."""
        where = f"{self.source or 'inventory'}: node {node.name}"
        if not node.key or not self.known_hosts:
            raise InventoryError(f"{where}: a netns node needs `key` and the inventory's `known_hosts`")
        path = Path(self.known_hosts).expanduser()
        try:
            known = asyncssh.import_known_hosts(path.read_text())
        except (OSError, ValueError) as exc:
            raise InventoryError(f"{where}: cannot read known_hosts {path}: {exc}") from None
        port = node.port or 22
        keys = asyncssh.match_known_hosts(known, host, host, None if port == 22 else port)[0]
        if not keys:
            raise InventoryError(f"{where}: {path} has no host key for {host}")
        line = keys[0].export_public_key("openssh").decode().strip()
        return NetnsConnector(node.netns or "", host, port, node.user or "root", node.key, line)

    def to_yaml(self) -> str:
        data: dict[str, Any] = {"cluster": self.cluster}
        if self.api_via:
            data["api_via"] = self.api_via
        if self.known_hosts:
            data["known_hosts"] = self.known_hosts
        if not self.ssh_config:
            data["ssh_config"] = False
        data["nodes"] = [{k: v for k, v in asdict(n).items() if v is not None} for n in self.nodes]
        return yaml.safe_dump(data, sort_keys=False)


def _shown(value: object) -> str:
    # a list or mapping is named by its kind and size: a crafted one would fill the screen
    if isinstance(value, list | dict):
        return f"a {'list' if isinstance(value, list) else 'mapping'} of {len(value)}"
    return short(repr(value))


def _unknown(keys: set[object]) -> str:
    return short(", ".join(sorted(map(str, keys))))


def _text(where: str, key: str, value: object, pattern: re.Pattern[str] | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise InventoryError(f"{where}: {key} must be text, got {_shown(value)}")
    text = str(value).strip()
    if pattern is not None and not pattern.fullmatch(text):
        raise InventoryError(f"{where}: {key} {short(repr(text))} is not valid")
    return text


def _entry(where: str, raw: object, index: int) -> NodeEntry:
    if not isinstance(raw, dict):
        raise InventoryError(f"{where}: nodes[{index}] must be a mapping with at least a name")
    unknown = set(raw) - _NODE_KEYS
    name = _text(f"{where}: nodes[{index}]", "name", raw.get("name"), _NAME_RE)
    if name is None:
        raise InventoryError(f"{where}: nodes[{index}] has no name")
    at = f"{where}: node {name}"
    if unknown:
        raise InventoryError(f"{at}: unknown field(s) {_unknown(unknown)}")
    internal_ip = _text(at, "internal_ip", raw.get("internal_ip"))
    if internal_ip is not None:
        try:
            ipaddress.IPv4Address(internal_ip)
        except ValueError:
            shown = short(repr(internal_ip))
            raise InventoryError(f"{at}: internal_ip {shown} is not an IPv4 address") from None
    port = raw.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        raise InventoryError(f"{at}: port {_shown(port)} is not a TCP port")
    key = _text(at, "key", raw.get("key"))
    if key is not None and not _is_file(key):
        raise InventoryError(f"{at}: key file {short(key)} does not exist")
    role = _text(at, "role", raw.get("role")) or "worker"
    netns = _text(at, "netns", raw.get("netns"))
    if netns is not None:
        try:
            validate_netns(netns)
        except UnsafeArgument as exc:
            raise InventoryError(f"{at}: {exc}") from None
    if role not in ROLES:
        raise InventoryError(f"{at}: role {short(repr(role))} is not one of {', '.join(ROLES)}")
    sudo = raw.get("sudo")
    if sudo is not None and not isinstance(sudo, bool):
        raise InventoryError(f"{at}: sudo must be true or false, got {_shown(sudo)}")
    return NodeEntry(
        name=name,
        address=_text(at, "address", raw.get("address"), _HOST_RE),
        internal_ip=internal_ip,
        user=_text(at, "user", raw.get("user"), _USER_RE),
        key=key,
        port=port,
        role=role,
        netns=netns,
        sudo=sudo,
    )


def check_user(user: str, where: str = "user") -> str:
    """`user` as an inventory takes it (a login name); InventoryError naming `where` otherwise."""
    return _text(where, "user", user, _USER_RE) or user


def parse_inventory(text: str, source: str) -> Inventory:
    """An inventory from YAML text; InventoryError naming `source` and what is wrong."""
    try:
        data = safe_load(text, source)
    except YamlError as exc:
        raise InventoryError(str(exc)) from None
    return inventory_from_data(data, source)


def inventory_from_data(data: object, source: str) -> Inventory:
    """An inventory from parsed YAML; every defect is InventoryError naming `source`, the node and the key."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
        raise InventoryError(f"{source}: needs a `nodes:` list (see `labyrinth cluster bootstrap --help`)")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise InventoryError(f"{source}: unknown field(s) {_unknown(unknown)}")
    nodes = tuple(_entry(source, raw, i) for i, raw in enumerate(data["nodes"]))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise InventoryError(f"{source}: node names repeat: {short(', '.join(names))}")
    controls = [n.name for n in nodes if n.role == "control-plane"]
    if len(controls) > 1:
        raise InventoryError(f"{source}: one control plane only, not {short(', '.join(controls))}")
    if not controls:  # the first node is the control plane, as node-0 in the article
        nodes = (replace(nodes[0], role="control-plane"), *nodes[1:])
    api_via = _text(source, "api_via", data.get("api_via"), _NAME_RE)
    if api_via is not None and api_via not in names:
        raise InventoryError(
            f"{source}: api_via {short(repr(api_via))} is not one of the nodes ({short(', '.join(names))})"
        )
    ssh_config = data.get("ssh_config", True)
    if not isinstance(ssh_config, bool):
        raise InventoryError(f"{source}: ssh_config must be true or false")
    cluster = _text(source, "cluster", data.get("cluster"), _NAME_RE) or Path(source).stem or "cluster"
    known_hosts = _text(source, "known_hosts", data.get("known_hosts"))
    return Inventory(cluster, nodes, api_via, known_hosts, ssh_config, source)


def _is_file(key: str) -> bool:
    try:
        return Path(key).expanduser().is_file()
    except (OSError, RuntimeError, ValueError):  # a name too long, `~nobody`, a NUL byte
        return False


def load_inventory(path: Path) -> Inventory:
    """The inventory file at `path` (read bounded, YAML without aliases); InventoryError in one line."""
    try:
        data = read_yaml_file(path, "inventory")
    except OSError as exc:
        raise InventoryError(f"cannot read inventory {path}: {short(exc.strerror or str(exc))}") from None
    except YamlError as exc:
        raise InventoryError(str(exc)) from None
    return inventory_from_data(data, str(path))


def inventory_from_nodes(cluster: str, nodes: Sequence[NodeAccess], known_hosts: Path) -> Inventory:
    """What `GcpCluster.up()` returns, as an inventory: node-0 first, its API reached through SSH."""
    if not nodes:
        raise InventoryError(f"GCP cluster {cluster!r} has no nodes")
    entries = tuple(
        NodeEntry(
            name=n.name,
            address=n.external_ip or None,
            internal_ip=n.internal_ip,
            user=n.ssh_user,
            key=n.private_key_path,
            role="control-plane" if index == 0 else "worker",
        )
        for index, n in enumerate(nodes)
    )
    return Inventory(
        cluster, entries, entries[0].name, str(known_hosts), ssh_config=False, source=f"gcp:{cluster}"
    )


def inventory_from_gcp(cluster: str, root: Path | None = None) -> Inventory:
    """The nodes of the last `labyrinth gcp up --cluster CLUSTER` (its state.json; no network)."""
    from labyrinth_tui.cloud.gcp.state import StateDir

    state_dir = StateDir(cluster, root)
    state = state_dir.load()
    if state is None or not state.nodes:
        raise InventoryError(
            f"no nodes saved for GCP cluster {cluster!r}: run `labyrinth gcp up --cluster {cluster}`"
        )
    # the VMs are throw-away: their host keys live with the cluster, not in the user's known_hosts
    return inventory_from_nodes(cluster, state.nodes, state_dir.path / "known_hosts")
