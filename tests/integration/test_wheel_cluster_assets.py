"""The wheel carries the node scripts and the article's manifests (cloud/assets/) as package data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from labyrinth_tui.cloud import ASSETS
from tests.conftest import ROOT

SHIPPED = ("node-ctl.sh", "node-wrk.sh", "node-lib.sh", "1.yaml", "2.yaml")


def test_wheel_ships_the_node_scripts_and_manifests(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("labyrinth_tui-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for name in SHIPPED:
            packed = archive.read(f"labyrinth_tui/cloud/assets/{name}").decode()
            assert packed == (ASSETS / name).read_text(), name
