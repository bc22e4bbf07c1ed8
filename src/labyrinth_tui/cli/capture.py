"""`labyrinth capture NODE IFACE`: a live stream from a lab node, as tshark-like lines or JSON lines."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from labyrinth_tui.cli.options import prefix_option
from labyrinth_tui.lab.owned import run_root
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.sources.base import PacketBatch, SourceEvent, StreamSpec, StreamState, StreamStatus


def summary_line(number: int, since: float, packet: PacketSummary) -> str:
    """tshark's one-line summary: number, seconds since the first, src → dst, protocol, length, info."""
    return (
        f"{number:5d} {since:.9f} {packet.src} → {packet.dst} {packet.protocol} {packet.length} {packet.info}"
    )


def _sessions(prefix: str, node: str):  # type: ignore[no-untyped-def]
    from labyrinth_tui.lab.state import LabError, load_state
    from labyrinth_tui.nodes.connect import NetnsConnector
    from labyrinth_tui.nodes.session import NodeSession

    try:
        state = load_state(prefix)
    except LabError as exc:
        raise click.ClickException(str(exc)) from None
    if state is None:
        raise click.ClickException(f"lab {prefix!r} is not up (run `labyrinth lab up --prefix {prefix}`)")
    found = next((n for n in state.nodes if n.name == node), None)
    if found is None:
        names = ", ".join(n.name for n in state.nodes)
        raise click.ClickException(f"lab {prefix!r} has no node {node!r} (it has {names})")
    ssh = found.ssh
    connector = NetnsConnector(found.netns, found.address, ssh.port, ssh.user, ssh.client_key, ssh.host_key)
    return {node: NodeSession(node, connector)}


def _keep_packets(recording: Path, out: Path, last_frame: int | None) -> None:
    """The recording without readiness canaries (and past the -c-th packet): what the lines showed."""
    keep = "eth.type != 0x88b5" + (f" && frame.number <= {last_frame}" if last_frame else "")
    done = subprocess.run(
        ["tshark", "-r", str(recording), "-Y", keep, "-F", "pcapng", "-w", str(out)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise click.ClickException(f"could not write {out}: {done.stderr.strip()[-300:]}")


def _check_writable(target: Path) -> None:
    """Before the capture starts, not after its packets are in: can `-w`'s file be written at all?"""
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise click.BadParameter(f"{target} is a folder", param_hint="-w")
    if not folder.is_dir():
        raise click.BadParameter(f"{folder} is not a folder", param_hint="-w")
    if not os.access(target if target.exists() else folder, os.W_OK):
        raise click.BadParameter(f"{target} cannot be written", param_hint="-w")


async def _capture(
    prefix: str, spec: StreamSpec, count: int | None, record_dir: Path | None, as_json: bool
) -> tuple[str, int | None]:
    """Run the stream until -c packets, Ctrl-C or a failure; (failure reason or "", last frame shown)."""
    from labyrinth_tui.sources.captures import CaptureStreams

    sessions = _sessions(prefix, spec.node)
    captures = CaptureStreams(sessions, tag=prefix)
    shown = 0
    first_ts: float | None = None
    last_frame: int | None = None
    failure = ""
    closing: asyncio.Task[None] | None = None

    def stop() -> None:
        nonlocal closing
        if closing is None:
            closing = asyncio.ensure_future(captures.close(spec))

    def emit(event: SourceEvent) -> None:
        nonlocal shown, first_ts, last_frame, failure
        if isinstance(event, StreamStatus):
            if event.state is StreamState.FAILED:
                failure = event.reason
            elif not as_json or event.state is not StreamState.STOPPED:
                reason = f": {event.reason}" if event.reason else ""
                click.echo(f"{spec.key} {event.state.value}{reason}", err=True)
            return
        if not isinstance(event, PacketBatch) or (count is not None and shown >= count):
            return
        lines = []
        for packet in event.packets[: None if count is None else count - shown]:
            shown += 1
            first_ts = packet.ts if first_ts is None else first_ts
            last_frame = packet.number
            if as_json:
                lines.append(json.dumps(packet.as_dict(), separators=(",", ":")))
            else:
                lines.append(summary_line(shown, packet.ts - first_ts, packet))
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
        if count is not None and shown >= count:
            stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # ended by us, not by asyncio.run's cancellation: the node must be left clean first
        loop.add_signal_handler(sig, stop)
    try:
        await captures.open(spec, emit, record_dir=record_dir)
        if closing is not None:
            await closing
    finally:
        await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)
    path = captures.pcapng_path(spec)
    if record_dir is not None and path is not None:
        path.rename(record_dir / "stream.pcapng")
    return failure, last_frame


@click.command()
@click.argument("node")
@click.argument("interface")
@click.option("-f", "--filter", "capture_filter", default="", help="Capture filter (BPF), checked first.")
@click.option("-c", "--count", type=click.IntRange(min=1), default=None, help="Stop after this many packets.")
@click.option(
    "-w",
    "--write",
    "write",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the packets shown to this pcapng file.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per packet (PacketSummary fields).")
@prefix_option("The lab's name prefix.")
def capture(
    node: str,
    interface: str,
    capture_filter: str,
    count: int | None,
    write: Path | None,
    as_json: bool,
    prefix: str,
) -> None:
    """Capture live on INTERFACE of lab node NODE (like tshark on it), until -c packets or Ctrl-C."""
    if os.geteuid() != 0:
        raise click.ClickException("needs root: the lab's nodes live in network namespaces (try sudo)")
    spec = StreamSpec(node, interface, capture_filter, journey_fields=as_json)  # JSON: every field
    if write is not None:
        _check_writable(write)
    tmp = Path(tempfile.mkdtemp(prefix="capture-", dir=run_root(prefix))) if write is not None else None
    try:
        failure, last_frame = asyncio.run(_capture(prefix, spec, count, tmp, as_json))
        if failure:
            raise click.ClickException(f"{spec.key}: {failure}")
        if write is not None and tmp is not None:
            recording = tmp / "stream.pcapng"
            if not recording.exists():
                raise click.ClickException(f"{spec.key}: the recording could not be fetched from {node}")
            _keep_packets(recording, write, last_frame if count is not None else None)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
