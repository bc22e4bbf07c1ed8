"""`labyrinth doctor`: what is missing, and the exact command that fixes it."""

from __future__ import annotations

import json
import sys

import click

from labyrinth_tui.doctor import all_well, run_checks
from labyrinth_tui.model.topology import to_jsonable


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(as_json: bool) -> None:
    """Check the tools and privileges the app needs; exit 0 only when all is well."""
    checks = run_checks()
    ok = all_well(checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": to_jsonable(checks)}, indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            mark = "✓" if c.ok else ("✗" if c.required else "!")
            click.echo(f"{mark} {c.name:<{width}}  {c.detail}")
            if not c.ok:
                click.echo(f"  {'':<{width}}  needed for: {c.needed_for}")
                click.echo(f"  {'':<{width}}  fix: {c.fix}")
        click.echo("all is well" if ok else "something is missing: see the fixes above")
    sys.exit(0 if ok else 1)
