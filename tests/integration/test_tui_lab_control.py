"""The app's lab commands on a real lab: down removes everything it made, up brings the tree back."""

from __future__ import annotations

import subprocess

from labyrinth_tui.sources.lab import LabSource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree
from tests.conftest import needs_root
from tests.integration.conftest import labyrinth, unique_prefix


def _netns(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"{prefix}.")]


@needs_root
async def test_lab_down_and_up_from_the_app() -> None:
    prefix = unique_prefix("c")
    try:
        app = make_app(LabSource.article(prefix=prefix))
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            screen = app.screen
            assert isinstance(screen, MainScreen)
            assert len(_netns(prefix)) == 10  # VPC, 3 nodes, 3 pods, 3 lxc_health endpoints (ebpf)
            screen.action_lab_down()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert _netns(prefix) == []
            assert "lab is down" in str(screen.query_one(TopologyTree).root.label)
            screen.action_lab_up()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert len(_netns(prefix)) == 10  # VPC, 3 nodes, 3 pods, 3 lxc_health endpoints (ebpf)
            assert f"lab {prefix}" in str(screen.query_one(TopologyTree).root.label)
            await pilot.press("q")
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)
