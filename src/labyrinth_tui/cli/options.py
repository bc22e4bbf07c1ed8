"""Options shared by the commands: `--prefix`, checked by the lab's one rule before anything uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _checked_prefix(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from labyrinth_tui.lab.spec import PrefixError, check_prefix

    try:
        return check_prefix(value)
    except PrefixError as exc:
        raise click.BadParameter(str(exc)) from None


def prefix_option(help: str = "Which lab (see `labyrinth lab up`).") -> Callable[[F], F]:
    """`--prefix`, validated (1-16 of a-z, 0-9, '-') before any path or netns name is formed: exit 2."""
    return click.option(
        "--prefix", default="labyrinth", show_default=True, help=help, callback=_checked_prefix
    )


def pods_per_node_option(help: str) -> Callable[[F], F]:
    from labyrinth_tui.lab.spec import PODS_PER_NODE_MAX

    return click.option(
        "--pods-per-node",
        default=0,
        show_default=True,
        type=click.IntRange(0, PODS_PER_NODE_MAX),
        help=help,
    )
