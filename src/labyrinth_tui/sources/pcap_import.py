"""Summaries from capture files: tshark reads them in the live format, our parser makes PacketSummaries."""

from __future__ import annotations

import subprocess
from pathlib import Path

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.probes.capture import read_argv
from labyrinth_tui.probes.capture_parse import SummaryParser


class PcapImportError(RuntimeError):
    """tshark could not read the file; the message is tshark's."""


def summaries_from_pcap(path: Path, node: str, interface: str) -> list[PacketSummary]:
    """Every packet of `path` as seen on node/interface (tshark must be installed; no root needed)."""
    out = subprocess.run(read_argv(str(path)), capture_output=True, text=True, check=False, timeout=300)
    if out.returncode != 0:
        raise PcapImportError(f"{path}: {out.stderr.strip() or f'tshark exited {out.returncode}'}")
    return SummaryParser(node, interface).parse_many(out.stdout.splitlines())
