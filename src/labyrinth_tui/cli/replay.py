"""`labyrinth replay [DIR]`: play a recorded bundle (default: the article's journey); no root, no lab."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from labyrinth_tui.model.serialize import BundleFormatError, packet_to_json, topology_to_json
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE, Bundle, read_packets
from labyrinth_tui.sources.replay import ReplaySource


@click.command()
@click.argument("bundle", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--speed", default=1.0, show_default=True, help="1 = recorded pace, 10 = ten times faster, 0 = at once."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the topology and every packet as JSON lines, no TUI."
)
def replay(bundle: Path | None, speed: float, as_json: bool) -> None:
    """Replay a recording (default: the article's journey, shipped with the app); no root needed."""
    root = bundle or ARTICLE_BUNDLE
    try:
        loaded = Bundle.load(root)
    except BundleFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"topology": topology_to_json(loaded.topology), "title": loaded.title}))
        for stream in loaded.streams:
            if stream.packets_file is None:
                continue
            try:  # streamed: a 500k-packet recording is printed as it is read, in bounded memory
                for packet in read_packets(stream.packets_file):
                    click.echo(json.dumps(packet_to_json(packet), separators=(",", ":")))
            except (BundleFormatError, OSError) as exc:
                raise click.ClickException(str(exc)) from exc
        return
    from labyrinth_tui.ui.app import make_app

    source = ReplaySource(root, speed=speed)
    app = make_app(source)
    app.sub_title = f"replay · {loaded.title or root}"
    app.run()
    asyncio.run(source.close())
