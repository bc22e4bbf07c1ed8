"""Discovery: ONE batched command per node, parsed into its Node (interfaces, veth pairs, pods).

The node runs a small generated script (fed to `sh -s`) that lists its own links, routes and named
netns, then dumps every netns linked to it from ONE python3 process that enters each with setns
(probes/netns_dump.py; where python3 cannot do it, a loop of one `nsenter … ip` per netns prints the
same): so the round trips per node stay one, and the processes per node a handful, whatever the pods.
Pod identity (namespace/name) is not the node's to say: the source passes `{pod_ip: (namespace, name)}`
(the lab's spec, or the Kubernetes API); unmatched pods keep their netns name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from labyrinth_tui.model.topology import Interface, InterfaceKind, Node, Pod, Route, VethPair
from labyrinth_tui.nodes.commands import NETNS_ENTER, ForEachNetns, Section, batch_script, new_marker
from labyrinth_tui.nodes.errors import NodeError, sudo_refusal
from labyrinth_tui.nodes.runner import CommandRunner
from labyrinth_tui.probes.iproute import (
    DiscoveryError,
    interfaces_from_json,
    load_json_values,
    parse_interfaces,
    parse_netns_ids,
    parse_netns_inodes,
    parse_ps,
    parse_routes,
    routes_from_json,
)
from labyrinth_tui.probes.netns_dump import NETNS_DUMP_SCRIPT

__all__ = ["DiscoveryError", "discover", "discover_node", "discovery_script", "parse_discovery"]

PodIdentities = Mapping[str, tuple[str, str]]  # pod IP → (namespace, name)
MAX_PROBLEMS_SHOWN = 5
POD_QUERIES = "addr show\nroute show\n"  # `ip -b` reads them: a pod's links+addresses, then its routes

DISCOVERY = (
    Section("hostname", ("hostname",)),
    # -d addr: link details (kind, vxlan, link_netnsid, peer) and addresses in one listing
    Section("addr", ("ip", "-j", "-d", "addr", "show")),
    Section("route", ("ip", "-j", "route", "show")),
    # after the link listing, which makes the kernel give ids to the netns our veths lead to
    Section("netns", ("ip", "-j", "netns", "list")),
    # per linked netns (a pod): its links+addresses and its routes, all from one python3 process; else
    # from one `ip -b` each, entered by nsenter --net (`ip -n` copies the node's whole mount table per
    # pod: pods² on a busy node)
    ForEachNetns(
        (
            Section(
                "ip",
                ("nsenter", NETNS_ENTER, "ip", "-force", "-j", "-d", "-b", "-"),
                stdin="addr show\nroute show\n",
            ),
        ),
        dump=("python3", "-c", NETNS_DUMP_SCRIPT),
    ),
    # which process lives in which netns, for every pod at once: ps's netns column against the
    # inodes of /run/netns (what `ip netns pids` compares, without one scan of /proc per pod)
    Section("netns-inodes", ("ls", "-iL", "/run/netns")),
    Section("ps", ("ps", "-e", "-o", "pid=,netns=,args=")),
)


def discovery_script(marker: str) -> str:
    return batch_script(marker, DISCOVERY)


@dataclass
class Output:
    """One section's stdout; `status` None when its end never came (output cut short)."""

    body: list[str] = field(default_factory=list)
    status: int | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.body)


@dataclass
class RawDiscovery:
    host: dict[str, Output] = field(default_factory=dict)
    netns: dict[str, dict[str, Output]] = field(default_factory=dict)


def split_sections(text: str, marker: str) -> RawDiscovery:
    """The script's stdout cut at its marker lines; lines outside any section are dropped."""
    raw = RawDiscovery()
    place = raw.host
    current: Output | None = None
    for line in text.split("\n"):
        if not line.startswith(marker + " "):
            if current is not None:
                current.body.append(line)
            continue
        words = line[len(marker) + 1 :].split(" ")
        if words[0] == "netns" and len(words) == 2:
            place = raw.netns.setdefault(words[1], {})
            current = None
        elif words[0] == "netns-done":
            place, current = raw.host, None
        elif words[0] == "begin" and len(words) == 2:
            current = place.setdefault(words[1], Output())
        elif words[0] == "end" and len(words) == 3 and current is not None:
            good = words[2].isascii() and words[2].isdigit() and len(words[2]) < 4  # "¹".isdigit() is True
            current.status = int(words[2]) if good else -1
            current = None
    return raw


def _section(sections: Mapping[str, Output], name: str, where: str, problems: list[str]) -> Output | None:
    out = sections.get(name)
    if out is None:
        problems.append(f"{where}: no `{name}` output")
    elif out.status is None:
        problems.append(f"{where}: `{name}` output cut short")
    elif out.status != 0:
        problems.append(f"{where}: `{name}` exited {out.status}")
    return out


def _ips(interface: Interface) -> list[str]:
    """Its addresses without prefix length, IPv4 first, link-local IPv6 left out."""
    ips = [a.split("/")[0] for a in interface.addresses]
    return [ip for ip in ips if ":" not in ip] + [ip for ip in ips if ":" in ip and not ip.startswith("fe80")]


@dataclass
class _PodNetns:
    interfaces: dict[int, Interface]
    routes: list[Route]


def _read_netns(name: str, sections: Mapping[str, Output], problems: list[str]) -> _PodNetns | None:
    where = f"netns {name}"
    out = _section(sections, "ip", where, problems)
    if out is None or not out.body:
        return None
    try:
        values = load_json_values(out.text, where)
    except DiscoveryError as exc:
        problems.append(str(exc))
        return None
    lists = [v for v in values if isinstance(v, list)]
    if len(lists) != len(values) or not lists:
        problems.append(f"{where}: expected the JSON lists of `addr show` and `route show`")
        return None
    interfaces, found = interfaces_from_json(lists[0], f"{where} interfaces")
    problems += found
    routes: list[Route] = []
    if len(lists) < 2:
        problems.append(f"{where}: no routes")
    else:
        routes, found = routes_from_json(lists[1], f"{where} routes")
        problems += found
    return _PodNetns({i.ifindex: i for i in interfaces}, routes)


def _pair_and_pods(
    interfaces: list[Interface],
    raw: RawDiscovery,
    netns_ids: dict[int, str],
    identities: PodIdentities,
    processes: dict[str, list[str]],
    problems: list[str],
) -> tuple[list[VethPair], list[Pod]]:
    pairs: list[VethPair] = []
    pods: dict[str, Pod] = {}
    cache: dict[str, _PodNetns | None] = {}
    for host in interfaces:
        if host.kind is not InterfaceKind.VETH or host.link_netnsid is None:
            continue  # a veth with both ends here (cilium_host ↔ cilium_net) has no netns id
        name = netns_ids.get(host.link_netnsid)
        if name is None:
            problems.append(f"{host.name}: its peer's netns id {host.link_netnsid} has no name here")
            continue
        if name not in raw.netns:
            problems.append(f"{host.name}: netns {name} was not listed by the node")
            continue
        if name not in cache:
            cache[name] = _read_netns(name, raw.netns[name], problems)
        netns = cache[name]
        if netns is None:
            continue
        peer = netns.interfaces.get(host.peer_ifindex) if host.peer_ifindex is not None else None
        if peer is None or (peer.peer_ifindex is not None and peer.peer_ifindex != host.ifindex):
            problems.append(f"{host.name}: no veth peer with ifindex {host.peer_ifindex} in netns {name}")
            continue
        pairs.append(VethPair(host.name, host.ifindex, name, peer.name, peer.ifindex, host.link_netnsid))
        # a pod's host side carries no address of its own; a node's uplink (ens4 → the VPC) does
        pod_ips = _ips(peer)
        # Cilium's health endpoint (`lxc_health`) is wired as a pod is, but it is not one
        if _ips(host) or not pod_ips or name in pods or host.name == "lxc_health":
            continue
        ip = pod_ips[0]
        namespace, pod_name = identities.get(ip, ("", name))
        gateway = next((r.gateway for r in netns.routes if r.dst == "default" and r.gateway), None)
        pods[name] = Pod(
            namespace=namespace,
            name=pod_name,
            ip=ip,
            netns=name,
            host_veth=host.name,
            host_ifindex=host.ifindex,
            pod_ifindex=peer.ifindex,
            gateway=gateway,
            mtu=peer.mtu or None,
            routes=tuple(netns.routes),
            processes=tuple(processes.get(name, ())),
        )
    return pairs, list(pods.values())


def _processes_by_netns(host: Mapping[str, Output]) -> dict[str, list[str]]:
    """{netns name: ["PID ARGS", …]} from ps's netns column and the inodes of /run/netns."""
    inodes, ps = host.get("netns-inodes"), host.get("ps")
    if inodes is None or ps is None:
        return {}
    names = {inode: name for name, inode in parse_netns_inodes(inodes.text).items()}
    found: dict[str, list[str]] = {}
    for pid, (netns, args) in sorted(parse_ps(ps.text).items()):
        if netns in names:
            found.setdefault(names[netns], []).append(f"{pid} {args}".rstrip())
    return found


def parse_discovery(
    text: str,
    *,
    marker: str,
    node: str,
    address: str,
    pod_identities: PodIdentities | None = None,
    stderr: str = "",
) -> Node:
    """The discovery script's output → Node; partial (with `error`) when only part could be read.

    Raises DiscoveryError when not even the node's own interfaces can be read.
    """
    raw = split_sections(text, marker)
    problems: list[str] = []
    addr = _section(raw.host, "addr", "node", problems)
    if addr is None or not addr.body or not any(line.strip() for line in addr.body):
        why = stderr.strip().splitlines()[-1] if stderr.strip() else "; ".join(problems) or "no output"
        raise DiscoveryError(f"no interface listing from {node}: {why[:300]}")
    interfaces, found = parse_interfaces(addr.text, "node interfaces")
    problems += found
    routes: list[Route] = []
    route = _section(raw.host, "route", "node", problems)
    if route is not None and route.body:
        try:
            routes, found = parse_routes(route.text, "node routes")
            problems += found
        except DiscoveryError as exc:
            problems.append(str(exc))
    hostname_out = raw.host.get("hostname")
    hostname = (hostname_out.text.strip()[:255] or None) if hostname_out else None
    netns_ids: dict[int, str] = {}
    netns_out = _section(raw.host, "netns", "node", problems)
    if netns_out is not None and netns_out.body:
        try:
            netns_ids, found = parse_netns_ids(netns_out.text or "[]")
            problems += found
        except DiscoveryError as exc:
            problems.append(str(exc))
    processes = _processes_by_netns(raw.host)
    pairs, pods = _pair_and_pods(interfaces, raw, netns_ids, pod_identities or {}, processes, problems)
    error = None
    if problems:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        error = "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + (f" (and {more} more)" if more > 0 else "")
    return Node(
        name=node,
        address=address,
        interfaces=tuple(interfaces),
        routes=tuple(routes),
        pods=tuple(pods),
        netns=tuple(sorted(raw.netns)),
        partial=bool(problems),
        error=error,
        hostname=hostname,
        veth_pairs=tuple(pairs),
    )


async def discover_node(
    session: CommandRunner,
    pod_identities: PodIdentities | None = None,
    *,
    timeout: float = 30.0,
    privilege: Sequence[str] = (),
) -> Node:
    """One round trip to `session`'s node → its Node. Never raises for a node that fails to answer:
    that gives Node(reachable=False, error=why). `privilege` prefixes the command, e.g. ("sudo", "-n").

    Except SudoRefused: sudo would not run the script for this login, a fault of the inventory's user that
    no other node or command will get past, so the caller says it once instead of as a partial node."""
    marker = new_marker()
    argv = [*privilege, "sh", "-s"]
    try:
        result = await session.run(argv, input=discovery_script(marker), timeout=timeout, check=False)
    except NodeError as exc:
        return Node(name=session.name, address=session.address, reachable=False, error=exc.reason)
    refused = sudo_refusal(session.name, argv, result.exit_status, result.stderr)
    if refused is not None:
        raise refused
    try:
        return parse_discovery(
            result.stdout,
            marker=marker,
            node=session.name,
            address=session.address,
            pod_identities=pod_identities,
            stderr=result.stderr,
        )
    except DiscoveryError as exc:
        return Node(name=session.name, address=session.address, partial=True, error=str(exc))


async def discover(
    sessions: Sequence[CommandRunner], pod_identities: PodIdentities | None = None, *, timeout: float = 30.0
) -> list[Node]:
    """Every node at once; one that fails comes back unreachable with its reason, the others still come."""
    results = await asyncio.gather(
        *(discover_node(s, pod_identities, timeout=timeout) for s in sessions), return_exceptions=True
    )
    nodes = []
    for session, result in zip(sessions, results, strict=True):
        if isinstance(result, BaseException):
            why = f"discovery failed: {type(result).__name__}: {result}"
            nodes.append(Node(name=session.name, address=session.address, reachable=False, error=why))
        else:
            nodes.append(result)
    return nodes
