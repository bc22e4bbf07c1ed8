"""`labyrinth lab up | down | status | exec`: the article's cluster on this machine."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from labyrinth_tui.cli.options import pods_per_node_option, prefix_option

if TYPE_CHECKING:
    from labyrinth_tui.lab.spec import LabSpec

from labyrinth_tui.model.progress import Step, StepState


def _spec(
    prefix: str, pods_per_node: int = 0, datapath: str = "ebpf", bpf_attach: str = "auto", workers: int = 2
) -> LabSpec:
    from labyrinth_tui.lab.spec import article_spec

    try:
        return article_spec(prefix, pods_per_node, datapath, bpf_attach, workers)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _print_step(step: Step) -> None:
    if step.state is StepState.RUNNING:
        return
    mark = {StepState.DONE: "✓", StepState.FAILED: "✗"}.get(step.state, "·")
    line = f"{mark} {step.group:<7} {step.name:<12} {step.elapsed * 1000:7.1f} ms"
    if step.state is StepState.FAILED:
        line += f"  {step.log}"
    click.echo(line, err=True)


LAB_PREFIX_HELP = "Name prefix: several labs can live side by side."


@click.group()
def lab() -> None:
    """The article's cluster built from network namespaces on this machine (needs root)."""


@lab.command()
@prefix_option(LAB_PREFIX_HELP)
@pods_per_node_option("Extra pods per node, for scale.")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    help="Worker nodes node-1..N (2-40): a bigger cluster's stand-in.",
)
@click.option(
    "--datapath",
    type=click.Choice(["ebpf", "iptables"]),
    default="ebpf",
    show_default=True,
    help="How services are implemented: tc programs as Cilium's (ebpf), or kube-proxy's iptables.",
)
@click.option(
    "--bpf-attach",
    type=click.Choice(["auto", "tcx", "tc"]),
    default="auto",
    show_default=True,
    help="ebpf: tcx links (kernel ≥ 6.6) or classic tc clsact filters; auto picks by kernel.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the lab's status as JSON when it is up.")
def up(prefix: str, pods_per_node: int, workers: int, datapath: str, bpf_attach: str, as_json: bool) -> None:
    """Bring the lab up (idempotent): VPC, 3 nodes with sshd, pods, DNS, kube-proxy rules, VXLAN."""
    from labyrinth_tui.lab.state import LabError
    from labyrinth_tui.lab.up import up as lab_up

    try:
        state = lab_up(_spec(prefix, pods_per_node, datapath, bpf_attach, workers), progress=_print_step)
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    if state.datapath_note:
        click.echo(f"note: {state.datapath_note}", err=True)
    if as_json:
        click.echo(json.dumps(state.to_json(), indent=2))
    else:
        counts = f"{len(state.nodes)} nodes, {len(state.pods)} pods"
        how = f"ebpf, {state.bpf_attach}" if state.datapath == "ebpf" else state.datapath
        click.echo(f"lab {prefix!r} is up ({counts}, datapath {how}) in {state.up_seconds:.2f}s")


@lab.command()
@prefix_option(LAB_PREFIX_HELP)
def down(prefix: str) -> None:
    """Remove everything the lab made (also after a crash, found by prefix); nothing else."""
    from labyrinth_tui.lab.down import down as lab_down
    from labyrinth_tui.lab.state import LabError

    try:
        removed = lab_down(prefix)
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    not_ours = removed.pop("not_ours", [])
    strays = removed.get("stray_daemons", [])
    if not removed:
        click.echo(f"lab {prefix!r}: nothing to remove")
    else:
        summary = ", ".join(f"{len(v)} {k}" for k, v in removed.items())
        click.echo(f"lab {prefix!r} removed: {summary}")
    if strays:
        click.echo(
            f"  its netns was deleted by someone else; ended its daemons still up: pids {', '.join(strays)}"
        )
    if not_ours:
        click.echo(f"  left alone (named like the lab, not made by it): netns {', '.join(not_ours)}")


@lab.command()
@prefix_option(LAB_PREFIX_HELP)
@click.option("--json", "as_json", is_flag=True, help="Nodes, pods and services as JSON.")
def status(prefix: str, as_json: bool) -> None:
    """Is the lab up? Nodes (ssh port and host key), pods (netns, IP, host veth), services."""
    from labyrinth_tui.lab.checks import problems
    from labyrinth_tui.lab.down import status as lab_status
    from labyrinth_tui.lab.spec import lab_command
    from labyrinth_tui.lab.state import LabError

    try:
        state, found = lab_status(prefix)
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    found.pop("marks", None)
    broken = problems(state) if state else []
    if as_json:
        is_up = state is not None and not broken
        payload: dict[str, object] = state.to_json() if state else {"prefix": prefix, "leftovers": found}
        payload["up"] = is_up
        if broken:
            payload["problems"] = broken
        click.echo(json.dumps(payload, indent=2))
        sys.exit(0 if is_up else 1)
    if state is None:
        listed = ", ".join(f"{len(v)} {k}" for k, v in found.items())
        detail = f" (leftovers: {listed}; run `{lab_command('down', prefix)}`)"
        click.echo(f"lab {prefix!r} is down" + (detail if found else ""))
        sys.exit(1)
    if broken:
        click.echo(f"lab {prefix!r} is broken: " + "; ".join(broken[:5]) + ("; …" if len(broken) > 5 else ""))
        click.echo(
            f"  rebuild it: `{lab_command('up', prefix)}` (or remove it: `{lab_command('down', prefix)}`)"
        )
        sys.exit(1)
    click.echo(f"lab {prefix!r} is up, built in {state.up_seconds:.2f}s; state in {state.state_dir}")
    how = f"ebpf ({state.bpf_attach})" if state.datapath == "ebpf" else state.datapath
    click.echo(f"  datapath {how}" + (f" — {state.datapath_note}" if state.datapath_note else ""))
    for node in state.nodes:
        click.echo(f"  {node.name:<7} {node.address:<12} {node.role:<14} netns {node.netns}  ssh :22")
    for pod in state.pods[:20]:
        click.echo(
            f"    {pod.namespace}/{pod.name}  {pod.ip}  on {pod.node}  {pod.host_veth} ↔ eth0  {pod.netns}"
        )
    if len(state.pods) > 20:
        click.echo(f"    … and {len(state.pods) - 20} more pods")
    for svc in state.services:
        ports = ", ".join(f"{p.name} {p.port}/{p.protocol}" for p in svc.ports)
        click.echo(
            f"  svc {svc.namespace}/{svc.name}  {svc.cluster_ip}  ({ports}) → {', '.join(svc.endpoints)}"
        )


@lab.command()
@prefix_option()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the inventory to this file (default: print it).",
)
@click.option(
    "--user",
    default=None,
    metavar="NAME",
    help="Log in as NAME with `sudo -n` (as on GCP) instead of root; NAME needs passwordless sudo.",
)
def inventory(prefix: str, output: Path | None, user: str | None) -> None:
    """The lab as an SSH inventory for `cluster attach --ssh-inventory` (nodes reached inside their netns)."""
    from labyrinth_tui.cloud.bootstrap.inventory import InventoryError, check_user
    from labyrinth_tui.lab.state import LabError, load_state
    from labyrinth_tui.sources.lab_nodes import lab_inventory

    try:
        if user is not None:
            check_user(user, "--user")
        state = load_state(prefix)
    except (LabError, InventoryError) as exc:
        raise click.ClickException(str(exc)) from exc
    if state is None:
        raise click.ClickException(
            f"lab {prefix!r} is not up: run `labyrinth lab up --prefix {prefix}` first"
        )
    text = lab_inventory(state, user).to_yaml()
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text)
    click.echo(f"wrote {output}", err=True)


@lab.command(context_settings={"ignore_unknown_options": True})
@prefix_option(LAB_PREFIX_HELP)
@click.argument("pod")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec(prefix: str, pod: str, command: tuple[str, ...]) -> None:
    """Run a command inside a pod, like `kubectl exec POD -- CMD` (with the pod's resolv.conf)."""
    from labyrinth_tui.lab.host import require_root
    from labyrinth_tui.lab.netns import own_hostname
    from labyrinth_tui.lab.spec import lab_command
    from labyrinth_tui.lab.state import LabError, load_state

    try:
        require_root()
        state = load_state(prefix)
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    if state is None:
        raise click.ClickException(f"lab {prefix!r} is not up: run `{lab_command('up', prefix)}` first")
    spec = _spec(prefix, state.pods_per_node, state.datapath, state.bpf_attach or "auto")
    try:
        target = spec.find_pod(pod)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    # exec: the command becomes this process, inside the pod's netns; `lab down` ends whatever runs there
    own_hostname(target.name)
    os.execvp("ip", ["ip", "netns", "exec", spec.pod_netns(target), *command])


@lab.command()
@prefix_option()
@click.option("--json", "as_json", is_flag=True, help="Links, counters and service map as JSON.")
def bpf(prefix: str, as_json: bool) -> None:
    """Per node: each tc/tcx program on each device (as `bpftool link` prints it), its counters, the
    service map (as `cilium bpf lb list`). Read from the kernel, not from bpftool."""
    from labyrinth_tui.lab.bpf.inspect import lab_bpf
    from labyrinth_tui.lab.host import require_root
    from labyrinth_tui.lab.state import LabError, load_state
    from labyrinth_tui.model.bpf import node_lines

    try:
        require_root()
        state = load_state(prefix)
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    if state is None:
        raise click.ClickException(
            f"lab {prefix!r} is not up: run `labyrinth lab up --prefix {prefix}` first"
        )
    found = lab_bpf(state)
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2))
    elif state.datapath != "ebpf":
        click.echo(f"lab {prefix!r} runs the iptables datapath: no BPF programs (lab up --datapath ebpf)")
    else:
        for node in found.nodes:
            click.echo("\n".join(node_lines(node)))
    if any(n.error for n in found.nodes):
        sys.exit(1)
