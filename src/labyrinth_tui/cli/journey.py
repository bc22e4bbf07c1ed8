"""`labyrinth journey [--json]`: the article's traffic on the lab, every hop captured, stitched, headless."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click


@click.command()
@click.option("--prefix", default="labyrinth", show_default=True, help="Which lab (see `labyrinth lab up`).")
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
@click.option("--payload", default=None, help="The line the client sends [the article's].")
@click.option(
    "--ready-timeout",
    type=click.FloatRange(min=0.5),
    default=10.0,
    show_default=True,
    help="Seconds the hops' captures may take to be proven before the traffic.",
)
def journey(
    prefix: str,
    as_json: bool,
    bundle: Path | None,
    client: str | None,
    target: str | None,
    proto: str,
    payload: str | None,
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
        else:
            report = asyncio.run(run_journey(lab_state(prefix), request, ready_timeout=ready_timeout))
    except (JourneyError, LabError, BundleFormatError, RequestError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.jsonable(), indent=2))
    else:
        click.echo("\n".join(journey_lines(report)))
    hs = report.handshake
    raise SystemExit(0 if hs is not None and hs.complete else 1)
