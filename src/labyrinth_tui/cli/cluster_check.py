"""`labyrinth cluster check`: the article's nc between every pair of nodes, over SSH, as a matrix."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from labyrinth_tui.cloud.bootstrap.inventory import Inventory
    from labyrinth_tui.nodes.connect import HostKeyPrompt
    from labyrinth_tui.probes.node_check import NodeAddress, PairResult


def node_addresses(inventory: Inventory) -> list[NodeAddress]:
    """What the nodes reach each other by: the internal IP, else the address SSH uses."""
    from labyrinth_tui.probes.node_check import NodeAddress

    control = inventory.control_plane.name
    return [
        NodeAddress(n.name, n.internal_ip or n.address or n.name, n.name == control) for n in inventory.nodes
    ]


async def run_check(
    inventory: Inventory, seconds: float, ask_host_key: HostKeyPrompt | None = None
) -> tuple[list[NodeAddress], list[PairResult]]:
    """One SSH session per node (closed after), every probe from its source node."""
    from labyrinth_tui.nodes.session import NodeSession
    from labyrinth_tui.probes.node_check import check_nodes

    sessions = {
        n.name: NodeSession(
            n.name, inventory.connector(n, ask_host_key=ask_host_key), connect_attempts=1, connect_timeout=10
        )
        for n in inventory.nodes
    }
    nodes = node_addresses(inventory)
    try:
        return nodes, await check_nodes(sessions, nodes, seconds)
    finally:
        await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)


def _lab_inventory(prefix: str) -> Inventory:
    from labyrinth_tui.lab.state import LabError, load_state
    from labyrinth_tui.sources.lab_nodes import lab_inventory

    try:
        state = load_state(prefix)
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    if state is None:
        raise click.ClickException(
            f"lab {prefix!r} is not up: run `labyrinth lab up --prefix {prefix}` first"
        )
    return lab_inventory(state)


def load_inventory_file(path: Path | None) -> Inventory | None:
    """The inventory at `path` (None when not given); a bad file is a usage error with its reason."""
    from labyrinth_tui.cloud.bootstrap.inventory import InventoryError, load_inventory

    if path is None:
        return None
    try:
        return load_inventory(path)
    except InventoryError as exc:
        raise click.UsageError(str(exc)) from None


@click.command()
@click.option(
    "--ssh-inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The nodes and how SSH reaches each (`labyrinth lab inventory` writes one for the lab).",
)
@click.option("--prefix", default=None, help="A lab on this machine instead of an inventory.")
@click.option("--timeout", "seconds", default=2.0, show_default=True, help="Seconds each probe waits.")
@click.option("--json", "as_json", is_flag=True, help="Every probe as JSON.")
def check(ssh_inventory: Path | None, prefix: str | None, seconds: float, as_json: bool) -> None:
    """From every node to every other: 22, 6443 (control plane), 8472/udp, 10250 — which answer.

    Passes when the network lets every probe through: open, or refused by the host (nothing listens
    yet: fine before Kubernetes is installed). Fails on silence (filtered: a firewall?) or no route.
    UDP silence is "open|filtered": it cannot be told apart from a drop, so it is not a failure.
    """
    from labyrinth_tui.probes.node_check import matrix_lines

    if (ssh_inventory is None) == (prefix is None):
        raise click.UsageError("give one of --ssh-inventory FILE or --prefix LAB")
    if not 0 < seconds <= 30:
        raise click.UsageError("--timeout: between 0 and 30 seconds")
    inventory = _lab_inventory(prefix) if prefix is not None else load_inventory_file(ssh_inventory)
    assert inventory is not None
    nodes, results = asyncio.run(run_check(inventory, seconds))
    if as_json:
        rows = [
            {"from": r.source, "to": r.target, "port": r.port.port, "proto": r.port.proto,
             "verdict": str(r.verdict), "passes": r.passes, "reason": r.reason}
            for r in results
        ]  # fmt: skip
        click.echo(json.dumps({"cluster": inventory.cluster, "probes": rows}, indent=2))
    else:
        for line in matrix_lines(nodes, results):
            click.echo(line)
    if not all(r.passes for r in results):
        raise SystemExit(1)
