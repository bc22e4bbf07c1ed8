"""`labyrinth topology`: the node → pod → netns → veth tree of the lab, as text (like `tree`) or JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import click

from labyrinth_tui.cli.options import prefix_option
from labyrinth_tui.model.topology import Node, Topology


def node_json(node: Node) -> dict[str, object]:
    return {
        "name": node.name,
        "address": node.address,
        "role": node.role,
        "reachable": node.reachable,
        "error": node.error,
        "partial": node.partial,
        "interfaces": [
            {
                "name": i.name,
                "kind": i.kind.value,
                "ifindex": i.ifindex,
                "mtu": i.mtu,
                "mac": i.mac,
                "state": i.state,
                "addresses": list(i.addresses),
                "master": i.master,
                "vxlan": {"vni": i.vxlan.vni, "port": i.vxlan.port, "local": i.vxlan.local}
                if i.vxlan
                else None,
            }
            for i in node.interfaces
        ],
        "pods": [
            {
                "namespace": p.namespace,
                "name": p.name,
                "ip": p.ip,
                "netns": p.netns,
                "host_veth": p.host_veth,
                "host_ifindex": p.host_ifindex,
                "pod_ifindex": p.pod_ifindex,
                "gateway": p.gateway,
                "processes": list(p.processes),
            }
            for p in node.pods
        ],
    }


def tree_lines(topology: Topology) -> list[str]:
    lines = [topology.cluster]
    for n_i, node in enumerate(topology.nodes):
        last_node = n_i == len(topology.nodes) - 1
        branch, stem = ("└── ", "    ") if last_node else ("├── ", "│   ")
        status = "" if node.reachable else f"  UNREACHABLE: {node.error}"
        status += f"  (partial: {node.error})" if node.partial else ""
        lines.append(f"{branch}{node.name} {node.address} [{node.role}]{status}")
        if not node.reachable:
            continue
        children: list[tuple[str, list[str]]] = []
        for iface in node.interfaces:
            extra = f" vni {iface.vxlan.vni} :{iface.vxlan.port}" if iface.vxlan else ""
            addrs = (" " + " ".join(iface.addresses)) if iface.addresses else ""
            children.append((f"{iface.name} ({iface.kind.value}, mtu {iface.mtu}){addrs}{extra}", []))
        for pod in node.pods:
            sub = [
                f"netns {pod.netns}",
                f"{pod.host_veth} ↔ eth0 (ifindex {pod.host_ifindex} ↔ {pod.pod_ifindex})",
            ]
            if pod.gateway:
                sub.append(f"default via {pod.gateway}")
            sub += [f"process {proc}" for proc in pod.processes[:5]]
            children.append((f"pod {pod.qualified_name} {pod.ip}", sub))
        for c_i, (label, subs) in enumerate(children):
            last = c_i == len(children) - 1
            lines.append(f"{stem}{'└── ' if last else '├── '}{label}")
            inner = stem + ("    " if last else "│   ")
            lines += [f"{inner}{'└── ' if s_i == len(subs) - 1 else '├── '}{s}" for s_i, s in enumerate(subs)]
    return lines


@click.command()
@prefix_option("Which lab.")
@click.option("--json", "as_json", is_flag=True, help="Nodes, interfaces and pods as JSON.")
def topology(prefix: str, as_json: bool) -> None:
    """The node → pod → netns → veth tree, discovered over SSH in one round trip per node."""
    from labyrinth_tui.lab.state import LabError, load_state
    from labyrinth_tui.sources.lab_nodes import discover_lab, sessions_for

    if os.geteuid() != 0:
        raise click.ClickException(
            "reaching lab nodes needs root (setns into their netns): sudo labyrinth topology"
        )
    try:
        state = load_state(prefix)
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    if state is None:
        raise click.ClickException(
            f"lab {prefix!r} is not up: run `labyrinth lab up --prefix {prefix}` first"
        )

    async def run() -> Topology:
        sessions = sessions_for(state)
        try:
            return await discover_lab(state, sessions)
        finally:
            await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)

    found = asyncio.run(run())
    if as_json:
        click.echo(
            json.dumps({"cluster": found.cluster, "nodes": [node_json(n) for n in found.nodes]}, indent=2)
        )
    else:
        click.echo("\n".join(tree_lines(found)))
    sys.exit(0 if all(n.reachable for n in found.nodes) else 1)
