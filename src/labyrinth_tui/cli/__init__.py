"""The `labyrinth` command: the TUI by default, and a headless `--json` twin for every pane."""

from __future__ import annotations

import click

from labyrinth_tui import __version__
from labyrinth_tui.cli.capture import capture
from labyrinth_tui.cli.cluster import cluster
from labyrinth_tui.cli.doctor import doctor
from labyrinth_tui.cli.gcp import gcp
from labyrinth_tui.cli.journey import journey
from labyrinth_tui.cli.lab import lab
from labyrinth_tui.cli.output import InertGroup
from labyrinth_tui.cli.record import record
from labyrinth_tui.cli.replay import replay
from labyrinth_tui.cli.topology import topology
from labyrinth_tui.cli.tour import tour
from labyrinth_tui.cli.tui import tui


@click.group(
    cls=InertGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="labyrinth")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Follow a packet's journey through Kubernetes networking, in your terminal.

    With no command, opens the TUI (same as `labyrinth tui`).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui)


main.add_command(tui)
main.add_command(doctor)
main.add_command(lab)
main.add_command(gcp)
main.add_command(cluster)
main.add_command(topology)
main.add_command(replay)
main.add_command(journey)
main.add_command(tour)
main.add_command(capture)
main.add_command(record)
