"""The viewers' cgroup: a capped CPU slice the viewers' apps join, removed when the server stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labyrinth_tui.serve.cpu_share import VIEWERS_CPU, ViewerCpu

JOIN = (
    "import sys; from labyrinth_tui.serve.cpu_share import join; "
    "print(join(sys.argv[1]), flush=True); input()"
)


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups are made by root (CI runs as root)")
def test_a_viewer_joins_the_capped_group_and_the_group_goes_with_the_server() -> None:
    cpu = ViewerCpu()
    path = cpu.make()
    assert path is not None and path.is_dir()
    try:
        quota = (path / "cpu.max").read_text().split()[0] if (path / "cpu.max").exists() else None
        quota = quota or (path / "cpu.cfs_quota_us").read_text().strip()
        assert int(quota) == int(VIEWERS_CPU * 100_000)
        viewer = subprocess.Popen(
            [sys.executable, "-c", JOIN, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert viewer.stdout is not None and viewer.stdout.readline().strip() == "True"
        assert path.name in Path(f"/proc/{viewer.pid}/cgroup").read_text()
        viewer.communicate("\n", timeout=10)
    finally:
        cpu.remove()
    assert not path.exists()
