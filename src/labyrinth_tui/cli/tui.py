"""`labyrinth tui`: open the app on the lab (the default), or with no source."""

from __future__ import annotations

import os

import click

from labyrinth_tui.cli.options import pods_per_node_option, prefix_option


@click.command()
@prefix_option("Which lab to bring up and show.")
@pods_per_node_option("Extra pods per node in the lab.")
@click.option("--no-lab", is_flag=True, help="Open the app without a source (no root needed).")
def tui(prefix: str, pods_per_node: int, no_lab: bool) -> None:
    """Open the TUI on the lab, bringing it up first if needed (the default command)."""
    from labyrinth_tui.ui.app import make_app

    if no_lab:
        make_app(None).run()
        return
    if os.geteuid() != 0:
        raise click.ClickException(
            "the lab needs root: run `sudo labyrinth` (or `make run`), or `labyrinth tui --no-lab`"
        )
    from labyrinth_tui.sources.lab import LabSource

    make_app(LabSource.article(prefix=prefix, pods_per_node=pods_per_node)).run()
