"""The `labyrinth` command: the TUI by default, and a headless `--json` twin for every pane."""

from __future__ import annotations

import importlib

import click

from labyrinth_tui import __version__
from labyrinth_tui.cli.output import InertGroup

# command name → "module:attribute". A command's modules (asyncssh, textual, the capture and cloud
# code) load only when it runs: `labyrinth --version` and every scripted call pay ~0.4 s less
# (`python -X importtime -m labyrinth_tui --version` shows what is loaded).
COMMANDS: dict[str, str] = {
    "tui": "labyrinth_tui.cli.tui:tui",
    "doctor": "labyrinth_tui.cli.doctor:doctor",
    "lab": "labyrinth_tui.cli.lab:lab",
    "gcp": "labyrinth_tui.cli.gcp:gcp",
    "cluster": "labyrinth_tui.cli.cluster:cluster",
    "topology": "labyrinth_tui.cli.topology:topology",
    "replay": "labyrinth_tui.cli.replay:replay",
    "journey": "labyrinth_tui.cli.journey:journey",
    "tour": "labyrinth_tui.cli.tour:tour",
    "capture": "labyrinth_tui.cli.capture:capture",
    "record": "labyrinth_tui.cli.record:record",
    "serve": "labyrinth_tui.cli.serve:serve",
}


class LazyGroup(InertGroup):
    """The root group: commands imported on first use, from `COMMANDS`; their output made inert."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="labyrinth")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Follow a packet's journey through Kubernetes networking, in your terminal.

    With no command, opens the TUI (same as `labyrinth tui`).
    """
    if ctx.invoked_subcommand is None:
        command = main.get_command(ctx, "tui")
        assert command is not None
        ctx.invoke(command)
