"""`labyrinth tour`: the article as a checklist run on the lab, each step ✓ or ✗ with what was seen."""

from __future__ import annotations

import asyncio
import json

import click

from labyrinth_tui.cli.options import prefix_option


@click.command()
@prefix_option()
@click.option("--json", "as_json", is_flag=True, help="The steps as JSON.")
def tour(prefix: str, as_json: bool) -> None:
    """Walk the article: pods, DNS walk, ClusterIP, pod IP, VXLAN, arrival, counters. Exit 0 when all pass."""
    from labyrinth_tui.lab.state import LabError
    from labyrinth_tui.sources.base import JourneyError
    from labyrinth_tui.sources.tour import lab_state, run_tour

    try:
        _, steps = asyncio.run(run_tour(lab_state(prefix)))
    except (JourneyError, LabError) as exc:
        raise click.ClickException(str(exc)) from exc
    passed = sum(s.passed for s in steps)
    if as_json:
        out = {
            "passed": passed,
            "steps": [{"title": s.title, "passed": s.passed, "seen": s.seen} for s in steps],
        }
        click.echo(json.dumps(out, indent=2))
    else:
        for s in steps:
            click.echo(f"{s.mark} {s.title}\n    {s.seen}")
        click.echo(f"{passed}/{len(steps)} steps passed")
    raise SystemExit(0 if passed == len(steps) else 1)
