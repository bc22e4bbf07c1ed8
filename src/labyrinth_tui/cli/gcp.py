"""`labyrinth gcp plan | up | status | down`: the article's GCP cluster in one command, and gone in one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.model.topology import to_jsonable

if TYPE_CHECKING:
    from labyrinth_tui.cloud.gcp.cluster import GcpCluster
    from labyrinth_tui.cloud.gcp.plan import Plan
    from labyrinth_tui.cloud.gcp.spec import ClusterSpec, NodeAccess

T = TypeVar("T")
GLYPH = {StepState.RUNNING: "…", StepState.DONE: "✓", StepState.FAILED: "✗", StepState.SKIPPED: "–"}


def _location(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--cluster", default="labyrinth", show_default=True, help="Cluster name (label value)."
            ),
            click.option("--project", help="GCP project (else $GOOGLE_CLOUD_PROJECT, else gcloud config)."),
            click.option("--region", help="Region [default: us-east4, or the one in state.json]."),
            click.option("--zone", help="Zone [default: <region>-b, or the one in state.json]."),
        ]
    ):
        f = option(f)
    return f


def _shape(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--ssh-source-range",
                "ssh_source_ranges",
                multiple=True,
                metavar="CIDR",
                help="Where your SSH comes from, e.g. 203.0.113.7/32 (repeatable). Never guessed.",
            ),
            click.option(
                "--article-firewall",
                is_flag=True,
                help="Also add the article's broad rules (SSH and everything from 0.0.0.0/0). Unwise.",
            ),
            click.option("--machine-type", default="e2-medium", show_default=True),
            click.option("--image-project", default="ubuntu-os-cloud", show_default=True),
            click.option("--image-family", default="ubuntu-2404-lts-amd64", show_default=True),
            click.option("--disk-size-gb", default=32, show_default=True, type=int),
            click.option("--disk-type", default="pd-standard", show_default=True),
            click.option("--ssh-user", default="labyrinth", show_default=True),
        ]
    ):
        f = option(f)
    return f


def _spec(
    cluster: str, project: str | None, region: str | None, zone: str | None, **shape: Any
) -> ClusterSpec:
    from labyrinth_tui.cloud.gcp.auth import resolve_project
    from labyrinth_tui.cloud.gcp.spec import ClusterSpec, parse_source_range
    from labyrinth_tui.cloud.gcp.state import StateDir

    state = StateDir(cluster).load()
    if state is not None:  # a cluster lives where it was made
        project, region = project or state.project or None, region or state.region or None
        zone = zone or (state.zone if not region or state.zone.startswith(f"{region}-") else None)
    region = region or "us-east4"
    ranges = tuple(parse_source_range(r) for r in shape.pop("ssh_source_ranges", ()))
    spec = ClusterSpec(
        cluster=cluster,
        project=resolve_project(project),
        region=region,
        zone=zone or f"{region}-b",
        ssh_source_ranges=ranges,
        **shape,
    )
    spec.validate()
    return spec


def _connect(spec: ClusterSpec) -> GcpCluster:
    from labyrinth_tui.cloud.gcp.cluster import GcpCluster

    return GcpCluster.connect(spec)


def _with_cluster(spec: ClusterSpec, work: Callable[[GcpCluster], T]) -> T:
    cluster = _connect(spec)
    try:
        return work(cluster)
    finally:
        cluster.close()


def _printer(out_err: bool) -> Callable[[Step], None]:
    def show(step: Step) -> None:
        if step.state is StepState.PENDING or (step.state is StepState.RUNNING and step.done > 0):
            return
        log = f"  {step.log}" if step.log else ""
        line = f"  {GLYPH[step.state]} {step.group} · {step.name}{log}  ({step.elapsed:.1f} s)"
        click.echo(line, err=out_err)

    return show


def _run(work: Callable[[], Any]) -> Any:
    from labyrinth_tui.cloud.gcp.errors import GcpError

    try:
        return work()
    except GcpError as e:
        raise click.ClickException(str(e)) from None


def _echo_lines(lines: list[str], err: bool = False) -> None:
    for line in lines:
        click.echo(line, err=err)


def _report(
    as_json: bool, options: dict[str, Any], fetch: Callable[[GcpCluster], Coroutine[Any, Any, Any]]
) -> None:
    """plan and status: fetch a result with .lines() and .to_json(), print one or the other."""

    def work() -> None:
        result: Any = _with_cluster(_spec(**options), lambda cluster: asyncio.run(fetch(cluster)))
        if as_json:
            click.echo(json.dumps(result.to_json(), indent=2))
        else:
            _echo_lines(result.lines())

    _run(work)


def _apply(cluster: GcpCluster, planned: Plan, question: str, yes: bool, as_json: bool) -> None:
    """up and down: show the plan; ask unless --yes (and unless there is nothing to change)."""
    _echo_lines(planned.lines(), err=as_json)
    if planned.changes and not yes and not click.confirm(question, err=as_json):
        verb = "created" if planned.verb == "up" else "deleted"
        raise click.ClickException(f"aborted: nothing was {verb}")


@click.group()
def gcp() -> None:
    """Provision the article's 3-node GCP cluster: plan, up, status, down."""


@gcp.command()
@_location
@_shape
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(as_json: bool, **options: Any) -> None:
    """Show what `up` would create, keep or refuse, and the estimated hourly cost."""
    _report(as_json, options, lambda cluster: cluster.plan())


@gcp.command()
@_location
@_shape
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the nodes as JSON (progress goes to stderr).")
def up(yes: bool, as_json: bool, **options: Any) -> None:
    """Create the network, subnet, firewall rules and the three nodes (idempotent)."""
    from labyrinth_tui.cloud.gcp.plan import Action

    def work() -> None:
        spec = _spec(**options)
        spec.validate(for_up=True)

        def run(cluster: GcpCluster) -> list[NodeAccess]:
            planned = asyncio.run(cluster.plan())
            cost = planned.estimate.hourly if planned.estimate else 0.0
            question = f"Create these? The cluster costs ≈ ${cost:.4f}/hour until `labyrinth gcp down`"
            if not planned.refs(Action.CONFLICT):  # with a conflict, up refuses at once: nothing to ask
                _apply(cluster, planned, question, yes, as_json)
            else:
                _echo_lines(planned.lines(), err=as_json)
            return asyncio.run(cluster.up(_printer(as_json), plan=planned))

        nodes = _with_cluster(spec, run)
        if as_json:
            click.echo(json.dumps(to_jsonable(nodes), indent=2))
            return
        click.echo(f"{spec.cluster} is up. Reach the nodes with:")
        for n in nodes:
            click.echo(
                f"  {n.name}  {n.internal_ip:<11} ssh -i {n.private_key_path} {n.ssh_user}@{n.external_ip}"
            )
        click.echo(
            f"It costs money while it exists: `labyrinth gcp down --cluster {spec.cluster}` when done."
        )

    _run(work)


@gcp.command()
@_location
@click.option("--json", "as_json", is_flag=True, help="Print the resources as JSON.")
def status(as_json: bool, **options: Any) -> None:
    """List our resources with their age and running cost."""
    _report(as_json, options, lambda cluster: cluster.status())


@gcp.command()
@_location
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print what was deleted as JSON.")
def down(yes: bool, as_json: bool, **options: Any) -> None:
    """Delete only our resources, in dependency order, and check that nothing is left."""

    def work() -> None:
        spec = _spec(**options)

        def run(cluster: GcpCluster) -> Plan:
            planned = asyncio.run(cluster.plan_down())
            _apply(cluster, planned, "Delete these?", yes, as_json)
            return asyncio.run(cluster.down(_printer(as_json), plan=planned))

        done = _with_cluster(spec, run)
        if as_json:
            click.echo(json.dumps(done.to_json(), indent=2))
        else:
            click.echo(f"nothing of {spec.cluster!r} is left in project {spec.project!r}")

    _run(work)
