"""`lab up` and `lab down` of one prefix at once, 20 times: always fully up or fully down, never half."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import needs_root
from tests.integration.conftest import LABYRINTH, labyrinth, unique_prefix
from tests.integration.test_lab_cleanup import traces

RUNS = 20
PODS_PER_NODE = "4"  # 22 netns a build (vpc, 3 nodes, 3 + 3 × 4 pods, 3 lxc_health peers): fits CI


def fully_up(prefix: str) -> bool:
    out = labyrinth("lab", "status", "--prefix", prefix, "--json", check=False)
    return out.returncode == 0 and json.loads(out.stdout)["up"] is True


def marks(prefix: str) -> list[str]:
    owned = Path("/run/labyrinth/.owned")
    return sorted(p.name for p in owned.glob(f"{prefix}.*")) if owned.exists() else []


@needs_root
def test_up_and_down_at_once_end_fully_up_or_fully_down() -> None:
    prefix = unique_prefix("r")
    ends = []
    try:
        for _ in range(RUNS):
            up = subprocess.Popen(
                [*LABYRINTH, "lab", "up", "--prefix", prefix, "--pods-per-node", PODS_PER_NODE],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            down = subprocess.Popen(
                [*LABYRINTH, "lab", "down", "--prefix", prefix],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for proc in (up, down):
                _, err = proc.communicate(timeout=120)
                assert proc.returncode == 0 and "Traceback" not in err, err
            if fully_up(prefix):
                ends.append("up")
                assert len(marks(prefix)) == 22  # every netns of the lab, lxc_health's peers included
            else:
                assert traces(prefix) == {} and marks(prefix) == [], "neither fully up nor fully down"
                ends.append("down")
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)
    assert traces(prefix) == {} and marks(prefix) == []
    assert len(ends) == RUNS
