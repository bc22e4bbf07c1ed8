"""`labyrinth serve`: the app over SSH — presenter keys drive it, audience keys follow in their terminals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import click

from labyrinth_tui.serve.keys import KeyRing, ServeError, host_key, known_hosts_line, read_keys
from labyrinth_tui.serve.server import Serve, ServeConfig


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise click.BadParameter(
            f"{listen!r}: expected HOST:PORT, e.g. 127.0.0.1:2222", param_hint="--listen"
        )
    return host.strip("[]") or "127.0.0.1", int(port)


def attach_argv(
    kubeconfig: Path, context: str | None, ssh_inventory: Path | None, no_discover: bool
) -> list[str]:
    """The presenter's child's options for a cluster; the files are checked here, before anyone connects,
    as `cluster attach` checks them (a wrong file or context is one line, not a presenter's broken app)."""
    from labyrinth_tui.cloud.bootstrap.inventory import InventoryError, load_inventory
    from labyrinth_tui.cloud.kube.client import context_cluster, load_kubeconfig
    from labyrinth_tui.cloud.kube.errors import KubeError

    try:
        if ssh_inventory is not None:
            load_inventory(ssh_inventory)
        context_cluster(load_kubeconfig(kubeconfig), context)
    except (InventoryError, KubeError) as exc:
        raise click.UsageError(str(exc)) from None
    argv = ["--kubeconfig", str(kubeconfig.resolve())]
    if context:
        argv += ["--context", context]
    if ssh_inventory is not None:
        argv += ["--ssh-inventory", str(ssh_inventory.resolve())]
    return [*argv, "--no-discover"] if no_discover else argv


def say(line: str) -> None:
    click.echo(line)


@click.command()
@click.option("--listen", default="127.0.0.1:2222", show_default=True, help="HOST:PORT to listen on.")
@click.option(
    "--presenter-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    help="authorized_keys of who may drive (none by default).",
)
@click.option(
    "--audience-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    help="authorized_keys of the audience.",
)
@click.option("--audience-any-key", is_flag=True, help="Any key may follow (a conference).")
@click.option("--max-viewers", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--idle-timeout",
    default=900.0,
    show_default=True,
    type=click.FloatRange(0.5),
    help="Seconds without a key.",
)
@click.option(
    "--rate-limit",
    default=20,
    show_default=True,
    type=click.IntRange(1),
    help="Connections per minute per address.",
)
@click.option("--prefix", default="labyrinth", show_default=True, help="The lab the presenter's app shows.")
@click.option(
    "--replay",
    type=click.Path(file_okay=False, path_type=Path),
    help="Present a recording instead of the lab.",
)
@click.option("--speed", default=1.0, show_default=True, help="Replay pace (1 = as recorded).")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Present a cluster, as `cluster attach` shows it (its kubeconfig).",
)
@click.option("--context", default=None, help="With --kubeconfig: which context (default: its current one).")
@click.option(
    "--ssh-inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --kubeconfig: how SSH reaches each node (as `cluster attach` takes it).",
)
@click.option("--no-discover", is_flag=True, help="With --kubeconfig: only what the API says.")
def serve(
    listen: str,
    presenter_keys: Path | None,
    audience_keys: Path | None,
    audience_any_key: bool,
    max_viewers: int,
    idle_timeout: float,
    rate_limit: int,
    prefix: str,
    replay: Path | None,
    speed: float,
    kubeconfig: Path | None,
    context: str | None,
    ssh_inventory: Path | None,
    no_discover: bool,
) -> None:
    """Serve the app over SSH: the presenter drives, the audience follows (keys only, no shell)."""
    host, port = parse_listen(listen)
    if audience_keys is not None and audience_any_key:
        raise click.UsageError("--audience-keys or --audience-any-key, not both")
    try:
        keys = KeyRing(
            read_keys(presenter_keys) if presenter_keys else {},
            read_keys(audience_keys) if audience_keys else {},
            audience_any_key,
        )
        key = host_key()
    except ServeError as exc:
        raise click.ClickException(str(exc)) from exc
    if replay is not None and kubeconfig is not None:
        raise click.UsageError("--replay or --kubeconfig, not both")
    if kubeconfig is None and (context or ssh_inventory or no_discover):
        raise click.UsageError("--context, --ssh-inventory and --no-discover go with --kubeconfig")
    showing = f"the recording {replay}" if replay else f"the lab {prefix}"
    if kubeconfig is not None:
        source_argv = attach_argv(kubeconfig, context, ssh_inventory, no_discover)
        showing = f"the cluster of {kubeconfig}"
    elif replay is not None:
        from labyrinth_tui.model.serialize import BundleFormatError
        from labyrinth_tui.sources.bundle import Bundle

        try:
            Bundle.load(replay)
        except BundleFormatError as exc:
            raise click.ClickException(str(exc)) from exc
        source_argv = ["--replay", str(replay.resolve()), "--speed", str(speed)]
    else:
        if os.geteuid() != 0:
            raise click.ClickException(
                "the lab needs root: run `sudo labyrinth serve`, or serve `--replay DIR`"
            )
        source_argv = ["--prefix", prefix]
    config = ServeConfig(host, port, key, keys, source_argv, max_viewers, idle_timeout, rate_limit, say)
    try:
        asyncio.run(run(config, showing))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


async def run(config: ServeConfig, showing: str) -> None:
    server = Serve(config)
    port = await server.start()
    key = config.host_key
    say(f"labyrinth serve: listening on {config.host}:{port}")
    say(f"host key {key.get_fingerprint('sha256')} — known_hosts line:")
    say(f"  {known_hosts_line(key, config.host, port)}")
    audience = "any key" if config.keys.audience_any_key else f"{len(config.keys.audience)} keys"
    say(
        f"presenter keys: {len(config.keys.presenters)}; audience: {audience}; "
        f"at most {config.max_viewers} viewers"
    )
    say(f"showing: {showing} (captures run once, in the presenter's app)")
    if not config.keys.presenters:
        say("no presenter keys (--presenter-keys FILE): the audience will wait for a presenter")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        say("labyrinth serve: stopping; every session's app is ended")
        with contextlib.suppress(Exception):
            await server.close()
