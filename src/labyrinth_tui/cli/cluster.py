"""`labyrinth cluster attach | bootstrap`: any cluster in the TUI, or three VMs made into the article's."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from labyrinth_tui.cli.cluster_check import check, load_inventory_file
from labyrinth_tui.model.progress import Step, StepState

if TYPE_CHECKING:
    from labyrinth_tui.cloud.bootstrap.inventory import Inventory
    from labyrinth_tui.cloud.bootstrap.run import Versions
    from labyrinth_tui.model.topology import Topology
    from labyrinth_tui.nodes.connect import HostKeyPrompt, HostKeyQuestion
    from labyrinth_tui.sources.cluster import ClusterSource

MARKS = {StepState.DONE: "✓", StepState.FAILED: "✗", StepState.SKIPPED: "↷"}


def _print_step(step: Step) -> None:
    """Progress on stderr, one line per finished step (a failed one with its last lines)."""
    if step.state in (StepState.RUNNING, StepState.PENDING):
        return
    line = f"{MARKS[step.state]} {step.group:<8} {step.name:<16}"
    if step.state is StepState.SKIPPED:
        line += " already done"
    elif step.elapsed:
        line += f" {step.elapsed:7.1f} s"
    click.echo(line, err=True)
    if step.state is StepState.FAILED and step.log:
        for text in step.log.splitlines()[-12:]:
            click.echo(f"    {text}", err=True)


def _fail(exc: BaseException) -> click.ClickException:
    return click.ClickException(str(exc))


def _node_check(inventory: Inventory, ask_host_key: HostKeyPrompt | None) -> list[str]:
    """The article's nc between every pair of nodes as one progress step; the matrix when a probe failed
    (printed on stderr), else nothing."""
    from labyrinth_tui.cli.cluster_check import run_check
    from labyrinth_tui.probes.node_check import PROBE_SECONDS, matrix_lines

    started = time.monotonic()
    nodes, results = asyncio.run(run_check(inventory, PROBE_SECONDS, ask_host_key))
    failed = sum(not r.passes for r in results)
    state = StepState.FAILED if failed else StepState.DONE
    _print_step(Step("cluster", "node check", state, elapsed=time.monotonic() - started))
    if not failed:
        return []
    lines = [line for text in matrix_lines(nodes, results) for line in text.splitlines() or [""]]
    for line in lines:
        click.echo(f"    {line}".rstrip(), err=True)
    return lines


@click.group()
def cluster() -> None:
    """Real clusters: bootstrap Kubernetes + Cilium on three VMs over SSH, or attach to any cluster."""


# --- attach -------------------------------------------------------------------------------------------


async def _headless(source: ClusterSource) -> Topology:
    from labyrinth_tui.sources.base import ProgressEvent, SourceEvent, TopologyEvent

    seen: list[Topology] = []

    def emit(event: SourceEvent) -> None:
        if isinstance(event, ProgressEvent):
            _print_step(event.step)
        elif isinstance(event, TopologyEvent):
            seen.append(event.topology)

    try:
        await source.start(emit)
    finally:
        await source.close()
    return seen[-1]


@cluster.command()
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="KUBECONFIG",
    default=Path.home() / ".kube" / "config",
    show_default="$KUBECONFIG, else ~/.kube/config",
    help="The cluster's kubeconfig (after bootstrap: its admin.conf).",
)
@click.option("--context", default=None, help="Which context of the kubeconfig (default: its current one).")
@click.option(
    "--ssh-inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="How SSH reaches each node (address, user, key, port; api_via for an internal API server).",
)
@click.option("--no-discover", is_flag=True, help="Only what the API says: do not SSH into the nodes.")
@click.option("--no-check", is_flag=True, help="Skip the node ↔ node port check (`labyrinth cluster check`).")
@click.option("--json", "as_json", is_flag=True, help="Print the merged topology as JSON instead of the TUI.")
def attach(
    kubeconfig: Path,
    context: str | None,
    ssh_inventory: Path | None,
    no_discover: bool,
    no_check: bool,
    as_json: bool,
) -> None:
    """Show any cluster: nodes and pods from its API, each node's netns/veth tree discovered over SSH.

    Nodes are reached at their InternalIP with your ~/.ssh/config unless --ssh-inventory says otherwise.
    With an inventory the nodes are first checked as `labyrinth cluster check` does: a port the cluster
    needs that one node cannot reach on another is a warning (the matrix), not a reason to stop.
    """
    from labyrinth_tui.cloud.kube.client import context_cluster, load_kubeconfig
    from labyrinth_tui.cloud.kube.errors import KubeError
    from labyrinth_tui.model.topology import to_jsonable
    from labyrinth_tui.nodes.errors import NodeError
    from labyrinth_tui.sources.cluster import ClusterSource

    inventory = load_inventory_file(ssh_inventory)
    try:  # a wrong file or context is said here, before any screen opens
        context_cluster(load_kubeconfig(kubeconfig), context)
    except KubeError as exc:
        raise click.UsageError(str(exc)) from None
    warning: list[str] = []
    if inventory is not None and not no_discover and not no_check:
        warning = _node_check(inventory, None)
        if warning:
            click.echo("warning: some nodes cannot reach each other as the cluster needs (above)", err=True)
    source = ClusterSource(kubeconfig, context, inventory, discover=not no_discover)
    if not as_json:
        from labyrinth_tui.ui.app import make_app

        make_app(source).run()
        for line in warning:  # the screen covered it: said again once it is gone
            click.echo(line, err=True)
        return
    try:
        topology = asyncio.run(_headless(source))
    except (KubeError, NodeError, ValueError) as exc:
        raise _fail(exc) from None
    click.echo(json.dumps(to_jsonable(topology), indent=2))


# --- bootstrap ----------------------------------------------------------------------------------------


def _plan_lines(inventory: Inventory, versions: Versions) -> list[str]:
    lines = [f"Bootstrap Kubernetes {versions.kubernetes} (cri-o, kubeadm) and Cilium {versions.cilium} on:"]
    for node in (inventory.control_plane, *inventory.workers):
        role = "control plane" if node.role == "control-plane" else "worker"
        who = f"{node.user}@" if node.user else ""
        lines.append(
            f"  {node.name:<8} {role:<14} ssh {who}{node.address or node.internal_ip}  ({node.internal_ip})"
        )
    lines.append("It installs packages, sets hostnames and runs kubeadm on them (as root, through sudo).")
    return lines


def _host_key_prompt(yes: bool) -> Any:
    async def ask(question: HostKeyQuestion) -> bool:
        what = f"{question.node} ({question.host}) presents {question.key_type} key {question.fingerprint}"
        if yes:
            click.echo(f"trusting the new host key: {what}", err=True)
            return True
        return await asyncio.to_thread(click.confirm, f"{what}. Trust it?", default=False, err=True)

    return ask


@cluster.command()
@click.option(
    "--inventory",
    "inventory_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A YAML inventory of any three Ubuntu 24.04 VMs (see the README).",
)
@click.option(
    "--from-gcp", "gcp_cluster", default=None, help="The nodes of `labyrinth gcp up --cluster NAME`."
)
@click.option("--yes", is_flag=True, help="Do not ask: go on, and trust the VMs' new SSH host keys.")
@click.option("--image", default=None, help="The pods' image (default: the article's seantywork/ubuntu24).")
@click.option(
    "--kubernetes-version",
    default="1.33",
    show_default=True,
    help="kubeadm/kubelet/kubectl (and cri-o) minor.",
)
@click.option("--cilium-version", default="1.17.4", show_default=True, help="Cilium, installed by its CLI.")
@click.option(
    "--no-deploy", is_flag=True, help="Stop after the nodes: no namespaces, manifests or CoreDNS restart."
)
@click.option(
    "--no-check", is_flag=True, help="Install without first checking the nodes reach each other's ports."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (progress goes to stderr).")
def bootstrap(
    inventory_path: Path | None,
    gcp_cluster: str | None,
    yes: bool,
    image: str | None,
    kubernetes_version: str,
    cilium_version: str,
    no_deploy: bool,
    no_check: bool,
    as_json: bool,
) -> None:
    """Kubernetes + Cilium on three VMs over SSH, then the journey's workloads; re-run to resume.

    Before installing anything every node tries the ports the cluster needs on every other node (as
    the article does with nc, and as `labyrinth cluster check` does): a probe that fails stops here,
    with the matrix and each failure's reason.

    node-0 runs node-ctl.sh (kubeadm init, Cilium), node-1/node-2 run node-wrk.sh and join in
    parallel, they are labelled nodelabel=node-wrk-N, admin.conf is kept (0600) under the cluster's
    config folder and the API server is reached through an SSH tunnel (6443 stays internal).
    """
    from labyrinth_tui.cloud.bootstrap.inventory import InventoryError, inventory_from_gcp
    from labyrinth_tui.cloud.bootstrap.provision import provision
    from labyrinth_tui.cloud.bootstrap.run import BootstrapError, BootstrapFailed, Versions
    from labyrinth_tui.cloud.gcp.state import cluster_dir, config_root
    from labyrinth_tui.cloud.kube.errors import KubeError
    from labyrinth_tui.cloud.kube.manifests import DEFAULT_IMAGE
    from labyrinth_tui.nodes.errors import NodeError

    if (inventory_path is None) == (gcp_cluster is None):
        raise click.UsageError("give one of --inventory FILE or --from-gcp CLUSTER")
    try:
        versions = Versions(kubernetes=kubernetes_version, cilium=cilium_version)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if gcp_cluster is not None:
        try:
            inventory = inventory_from_gcp(gcp_cluster)
        except InventoryError as exc:
            raise click.UsageError(str(exc)) from None
        config_dir = cluster_dir(gcp_cluster)
    else:
        loaded = load_inventory_file(inventory_path)
        assert loaded is not None
        inventory = loaded
        config_dir = config_root() / "clusters" / inventory.cluster
    for line in _plan_lines(inventory, versions):
        click.echo(line, err=as_json)
    if not yes:
        click.confirm("Go on?", abort=True, err=as_json)
    if not no_check and _node_check(inventory, _host_key_prompt(yes)):
        raise click.ClickException(
            "the nodes cannot reach each other as the cluster needs (the matrix above): nothing was"
            " installed. Open the ports (a firewall rule?) and re-run, or pass --no-check to go on anyway."
        )
    try:
        done = asyncio.run(
            provision(
                inventory,
                config_dir,
                _print_step,
                ask_host_key=_host_key_prompt(yes),
                versions=versions,
                image=image or DEFAULT_IMAGE,
                deploy=not no_deploy,
            )
        )
    except BootstrapFailed as exc:
        # the failing steps printed their last lines above; here, what failed and what to do
        failed = "\n".join(f"{f.node}: {f.phase} failed: {f.reason}" for f in exc.failures)
        attach = f"labyrinth cluster attach --kubeconfig {config_dir / 'admin.conf'}"
        hint = f"What did join can be attached: {attach} --ssh-inventory {config_dir / 'inventory.yaml'}"
        raise click.ClickException(f"{failed}\nRe-run the same command to resume.\n{hint}") from None
    except BootstrapError as exc:
        why = f"{exc.node}: {exc.phase} failed: {exc.reason}"
        raise click.ClickException(f"{why}\nRe-run the same command to resume where it stopped.") from None
    except (InventoryError, KubeError, NodeError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    if as_json:
        payload = {
            "cluster": inventory.cluster,
            "control_plane": done.bootstrap.control_plane,
            "joined": done.bootstrap.joined,
            "labels": done.bootstrap.labels,
            "admin_conf": str(done.bootstrap.admin_conf),
            "inventory": str(done.inventory),
            "pods": None
            if done.pods is None
            else {
                p.namespace: {"name": p.name, "ip": p.ip, "node": p.node}
                for p in (done.pods.client, done.pods.server)
            },
            "attach": done.attach_command,
        }
        click.echo(json.dumps(payload, indent=2))
        return
    nodes = ", ".join([done.bootstrap.control_plane, *done.bootstrap.joined])
    click.echo(f"{inventory.cluster}: {nodes} are Ready and labelled.")
    if done.pods is not None:
        click.echo(
            f"  nc server pod {done.pods.server.namespace}/{done.pods.server.name} on {done.pods.server.node}"
        )
        click.echo(
            f"  nc client pod {done.pods.client.namespace}/{done.pods.client.name} on {done.pods.client.node}"
        )
    click.echo(f"admin.conf (0600): {done.bootstrap.admin_conf}")
    click.echo(f"Follow the journey: {done.attach_command}")


cluster.add_command(check)  # `cluster check` lives in its own module
