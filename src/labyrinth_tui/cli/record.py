"""`labyrinth record DIR`: the article's journey in the lab, saved as a bundle for `labyrinth replay`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from labyrinth_tui.cli.options import prefix_option


@click.command()
@click.argument("bundle", type=click.Path(file_okay=False, path_type=Path))
@prefix_option("Which lab (brought up if needed).")
@click.option("--title", default="", help="A line saying what the recording shows.")
def record(bundle: Path, prefix: str, title: str) -> None:
    """Record the article's journey in the lab (every hop, pcapng too) for replay without root."""
    from labyrinth_tui.lab.state import LabError
    from labyrinth_tui.sources.base import JourneyError
    from labyrinth_tui.sources.lab import LabSource
    from labyrinth_tui.sources.record import record_journey

    if os.geteuid() != 0:
        raise click.ClickException("recording runs the lab: sudo labyrinth record DIR")
    if bundle.exists() and any(bundle.iterdir()):
        raise click.ClickException(f"{bundle} exists and is not empty: pick a new folder")
    source = LabSource.article(prefix=prefix)

    async def run() -> Path:
        try:
            return await record_journey(source, bundle, title)
        finally:
            await source.close()

    try:
        out = asyncio.run(run())
    except (JourneyError, LabError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"recorded {out}: play it with `labyrinth replay {out}`")
