"""The wheel carries the node scripts, the article's manifests (cloud/assets/) and the relay's parts."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from labyrinth_tui.cloud import ASSETS
from labyrinth_tui.probes.capture_swap import RELAY_MAIN, RELAY_PARTS

SHIPPED = ("node-ctl.sh", "node-wrk.sh", "node-lib.sh", "1.yaml", "2.yaml")


def test_wheel_ships_the_node_scripts_and_manifests(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for name in SHIPPED:
            packed = archive.read(f"labyrinth_tui/cloud/assets/{name}").decode()
            assert packed == (ASSETS / name).read_text(), name


def test_wheel_ships_the_node_relay_whole(tmp_path: Path, wheel: Path) -> None:
    """Every part of the capture relay is in the wheel, and the program built from the installed ones runs."""
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)
    build = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from labyrinth_tui.probes import capture_swap; "
        "assert capture_swap.__file__.startswith(sys.argv[1]), capture_swap.__file__; "
        "sys.stdout.write(capture_swap.SWAP_SCRIPT)"
    )
    script = subprocess.run(
        [sys.executable, "-c", build, str(installed)], check=True, capture_output=True, text=True
    ).stdout
    for part in (*RELAY_PARTS, RELAY_MAIN):
        assert (installed / "labyrinth_tui" / "assets" / "node" / f"{part}.py").is_file(), part
    relay = ["python3", "-c", script, "", "1000", "0", "0", "", "tshark"]
    # a stream that is not pcap: the relay's own one line, from relay_wire (a part the loader made a module)
    bad = subprocess.run(relay, input=b"not a pcap header, 24+ bytes", capture_output=True, timeout=30)
    assert (bad.returncode, bad.stderr) == (2, b"labyrinth relay: not a pcap stream on stdin\n")
    # a capture that ended before it began: nothing to say, exit 0
    empty = subprocess.run(relay, input=b"", capture_output=True, timeout=30)
    assert (empty.returncode, empty.stderr) == (0, b"")
