"""A live stream's recording: its runs' capture files fetched from the node, trimmed, joined as pcapng."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.capture import merge_recording_argv
from labyrinth_tui.sources.base import StreamSpec


async def _local(argv: Sequence[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise OSError(f"{argv[0]} exited {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}")


def _write_base64(path: Path, text: str) -> None:
    path.write_bytes(base64.b64decode(text))


async def copy_recording(path: Path | None, target: Path) -> str | None:
    """A finished recording copied to `target` (off the loop, whole or not at all): "" when done,
    None when there is none."""
    if path is None or not path.exists():
        return None
    partial = target.with_name(target.name + ".part")
    try:
        await asyncio.to_thread(shutil.copyfile, path, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return ""


async def fetch_recording(
    session: NodeSession,
    parts: Sequence[tuple[str, int, int]],
    record_dir: Path,
    spec: StreamSpec,
    privilege: Sequence[str] = (),
) -> Path:
    """Join `parts` (node path, first frame, last frame kept) into one local pcapng in `record_dir`.

    Consecutive tshark runs overlap: each part keeps only the frames the stream counted, so frame N
    of the result is the stream's packet N. Bytes travel as base64: the session carries text.
    """
    if not parts:
        raise OSError("nothing was recorded")
    record_dir.mkdir(parents=True, exist_ok=True)
    name = f"{spec.node}-{spec.interface}-{secrets.token_hex(3)}.pcapng"
    out = record_dir / name
    # scratch inside record_dir: if we are killed mid-fetch, what it leaves goes with that folder
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=record_dir) as tmp:
        trimmed: list[str] = []
        for i, (path, first, last) in enumerate(parts):
            fetched = await session.run(
                [*privilege, "base64", "-w", "0", "--", path], timeout=300, check=False
            )
            if fetched.exit_status != 0:
                raise NodeError(session.name, f"could not read {path}: {fetched.stderr.strip()[-200:]}")
            raw = Path(tmp) / f"raw-{i}.pcap"
            # tens of MB for a long stream: decoded and written off the event loop
            await asyncio.to_thread(_write_base64, raw, fetched.stdout)
            kept = Path(tmp) / f"kept-{i}.pcapng"
            if len(parts) == 1 and first == 1:
                # one run: the whole file is the stream (frames past `last` too); as pcapng
                await _local(["editcap", "-F", "pcapng", str(raw), str(kept)])
                trimmed.append(str(kept))
                continue
            if last < first:
                continue
            await _local(["editcap", "-F", "pcapng", "-r", str(raw), str(kept), f"{first}-{last}"])
            trimmed.append(str(kept))
        if len(trimmed) == 1:
            await asyncio.to_thread(shutil.move, trimmed[0], out)
        else:
            await _local(merge_recording_argv(trimmed, str(out)))
    return out
