"""`labyrinth journey`: traffic between pods you choose, on the lab or an attached cluster, every hop seen."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from labyrinth_tui.cli.options import prefix_option

if TYPE_CHECKING:
    from labyrinth_tui.journey.report import JourneyReport
    from labyrinth_tui.journey.request import JourneyRequest
    from labyrinth_tui.sources.base import SourceEvent


@click.command()
@prefix_option()
@click.option("--json", "as_json", is_flag=True, help="The DNS phase, handshake hops and evidence as JSON.")
@click.option(
    "--bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Stitch a recording instead of running on the lab (no root; no evidence).",
)
@click.option(
    "--from", "client", default=None, metavar="NS/POD", help="The client pod [the article's wrk-1 pod]."
)
@click.option(
    "--to",
    "target",
    default=None,
    metavar="SERVICE.NS:PORT|NS/POD:PORT",
    help="What the client connects to [node-wrk-2-ubuntu24.wrk-2:9999].",
)
@click.option("--proto", type=click.Choice(["tcp", "udp"]), default="tcp", show_default=True)
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Follow it on an attached cluster (as `cluster attach` takes it) instead of the lab.",
)
@click.option("--context", default=None, help="With --kubeconfig: which context (default: its current one).")
@click.option(
    "--ssh-inventory",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --kubeconfig: how SSH reaches each node (`labyrinth lab inventory` writes the lab's).",
)
@click.option("--payload", default=None, help="The line the client sends [the article's].")
@click.option(
    "--ready-timeout",
    type=click.FloatRange(min=0.5),
    default=60.0,
    show_default=True,
    help="Hard limit in seconds on proving the hops' captures; before it, the wait goes on as long as "
    "they make progress.",
)
def journey(
    prefix: str,
    as_json: bool,
    bundle: Path | None,
    client: str | None,
    target: str | None,
    proto: str,
    payload: str | None,
    kubeconfig: Path | None,
    context: str | None,
    ssh_inventory: Path | None,
    ready_timeout: float,
) -> None:
    """Send a packet between pods you choose (the article's nc by default); show its journey, every hop."""
    from labyrinth_tui.journey.request import JourneyRequest, RequestError
    from labyrinth_tui.journey.text import journey_lines
    from labyrinth_tui.lab.state import LabError
    from labyrinth_tui.model.serialize import BundleFormatError
    from labyrinth_tui.sources.base import JourneyError
    from labyrinth_tui.sources.journey_replay import report_from_bundle
    from labyrinth_tui.sources.journey_run import run_journey
    from labyrinth_tui.sources.tour import lab_state

    try:
        request = JourneyRequest.parse(client, target, proto, payload)
        if bundle:
            report = report_from_bundle(bundle)
        elif kubeconfig is not None:
            report = asyncio.run(_on_cluster(kubeconfig, context, ssh_inventory, request, ready_timeout))
        else:
            state = lab_state(prefix)
            report = asyncio.run(run_journey(state, request, ready_timeout=ready_timeout, emit=_progress))
    except (JourneyError, LabError, BundleFormatError, RequestError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.jsonable(), indent=2))
    else:
        click.echo("\n".join(journey_lines(report)))
    hs = report.handshake
    raise SystemExit(0 if hs is not None and hs.complete else 1)


async def _on_cluster(
    kubeconfig: Path,
    context: str | None,
    ssh_inventory: Path | None,
    request: JourneyRequest,
    ready_timeout: float,
) -> JourneyReport:
    """Attach (API + SSH discovery, progress on stderr), follow the request, detach."""
    from labyrinth_tui.cli.cluster_check import load_inventory_file
    from labyrinth_tui.cloud.kube.errors import KubeError
    from labyrinth_tui.nodes.errors import NodeError
    from labyrinth_tui.sources.base import JourneyError
    from labyrinth_tui.sources.cluster import ClusterSource

    source = ClusterSource(
        kubeconfig, context, load_inventory_file(ssh_inventory), ready_timeout=ready_timeout
    )
    try:
        await source.start(_progress)
        return await source.journey(_progress, request)
    except (KubeError, NodeError) as exc:
        raise JourneyError(str(exc)) from None
    finally:
        await source.close()


def _progress(event: SourceEvent) -> None:
    """Steps (attach, each capture proven) on stderr as they finish; packets are for the report."""
    from labyrinth_tui.cli.cluster import _print_step
    from labyrinth_tui.sources.base import ProgressEvent

    if isinstance(event, ProgressEvent):
        _print_step(event.step)
