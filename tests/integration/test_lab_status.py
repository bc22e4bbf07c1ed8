"""`status` checks the daemons and netns it reports; `down` ends daemons whose netns someone else deleted."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import needs_root
from tests.integration.conftest import labyrinth, unique_prefix
from tests.integration.test_lab_cleanup import traces


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@needs_root
def test_a_netns_deleted_behind_the_labs_back() -> None:
    prefix = unique_prefix("d")
    try:
        labyrinth("lab", "up", "--prefix", prefix)
        state = json.loads(labyrinth("lab", "status", "--prefix", prefix, "--json").stdout)
        sshd = next(n["sshd_pid"] for n in state["nodes"] if n["name"] == "node-1")
        subprocess.run(["ip", "netns", "del", f"{prefix}.node-1"], check=True)

        status = labyrinth("lab", "status", "--prefix", prefix, check=False)
        assert status.returncode == 1
        assert f"lab {prefix!r} is broken: netns {prefix}.node-1 is gone" in status.stdout
        assert f"`labyrinth lab up --prefix {prefix}`" in status.stdout
        as_json = json.loads(labyrinth("lab", "status", "--prefix", prefix, "--json", check=False).stdout)
        assert as_json["up"] is False and f"netns {prefix}.node-1 is gone" in as_json["problems"]

        assert alive(sshd), "its sshd still runs, in a netns no longer named"
        down = labyrinth("lab", "down", "--prefix", prefix)
        assert f"ended its daemons still up: pids {sshd}" in down.stdout
        assert not alive(sshd) or Path(f"/proc/{sshd}/stat").read_text().split()[2] == "Z"
        assert traces(prefix) == {}
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@needs_root
def test_status_hint_and_exec_hint_repeat_the_prefix() -> None:
    prefix = unique_prefix("h")
    out = labyrinth("lab", "exec", "--prefix", prefix, "wrk-1", "true", check=False)
    assert out.returncode == 1
    assert f"run `labyrinth lab up --prefix {prefix}` first" in out.stderr
