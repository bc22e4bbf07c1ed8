"""`labyrinth tui`: open the app."""

from __future__ import annotations

import click


@click.command()
def tui() -> None:
    """Open the TUI (the default command)."""
    from labyrinth_tui.ui.app import make_app

    make_app(None).run()
