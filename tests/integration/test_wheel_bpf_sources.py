"""The wheel carries the eBPF datapath's C sources and header: an installed app can compile its programs."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_ships_the_bpf_sources(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    csrc = "labyrinth_tui/lab/bpf/csrc/"
    expected = {f"{csrc}{name}" for name in ("bpf_lxc.c", "bpf_overlay.c", "bpf_host.c", "lib/common.h")}
    assert expected <= names
    shipped = {name for name in names if name.startswith(csrc)}
    for name in shipped:
        assert zipfile.ZipFile(wheel).read(name) == (ROOT / "src" / name).read_bytes()
