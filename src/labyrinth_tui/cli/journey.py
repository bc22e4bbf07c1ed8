"""`labyrinth journey [--json]`: the article's traffic on the lab, every hop captured, stitched, headless."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from labyrinth_tui.cli.options import prefix_option


@click.command()
@prefix_option()
@click.option("--json", "as_json", is_flag=True, help="The DNS phase, handshake hops and evidence as JSON.")
@click.option(
    "--bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Stitch a recording instead of running on the lab (no root; no evidence).",
)
def journey(prefix: str, as_json: bool, bundle: Path | None) -> None:
    """Send the article's packet (nc by service name, wrk-1 → wrk-2); show its journey across both nodes."""
    from labyrinth_tui.journey.text import journey_lines
    from labyrinth_tui.lab.state import LabError
    from labyrinth_tui.model.serialize import BundleFormatError
    from labyrinth_tui.sources.base import JourneyError
    from labyrinth_tui.sources.journey_replay import report_from_bundle
    from labyrinth_tui.sources.journey_run import run_journey
    from labyrinth_tui.sources.tour import lab_state

    try:
        report = report_from_bundle(bundle) if bundle else asyncio.run(run_journey(lab_state(prefix)))
    except (JourneyError, LabError, BundleFormatError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.jsonable(), indent=2))
    else:
        click.echo("\n".join(journey_lines(report)))
    hs = report.handshake
    raise SystemExit(0 if hs is not None and hs.complete else 1)
