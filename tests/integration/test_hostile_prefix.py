"""`lab down` with every hostile prefix of the issue, in a private mount namespace: nothing outside moves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT, needs_root


@pytest.fixture(scope="module")
def hostile() -> dict[str, Any]:
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-m", "tests.integration.hostile_down"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "HOSTILE_STARTER_MNT": os.readlink("/proc/self/ns/mnt")},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@needs_root
def test_no_hostile_prefix_moves_anything_outside_the_lab(hostile: dict[str, Any]) -> None:
    before, after = hostile["before"], hostile["after"]
    assert set(before["files"]) - set(after["files"]) == set()
    assert set(after["files"]) - set(before["files"]) == set()
    assert after["netns"] == before["netns"]
    assert hostile["foreign_process_alive"]


@needs_root
def test_every_hostile_prefix_is_one_clear_line_and_exit_2(hostile: dict[str, Any]) -> None:
    for run in hostile["runs"][:-1]:
        assert run["rc"] == 2, run
        errors = [line for line in run["stderr"].splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "use 1-16 of a-z, 0-9 and '-'" in errors[0], run
        assert "Traceback" not in run["stderr"]
        assert len(errors[0]) < 160  # a 300-character prefix is cut, not echoed whole


@needs_root
def test_a_netns_merely_named_like_the_lab_is_left_alone_and_reported(hostile: dict[str, Any]) -> None:
    lab = hostile["runs"][-1]
    assert lab["prefix"] == "tr" and lab["rc"] == 0, lab
    assert "left alone (named like the lab, not made by it): netns tr.foo" in lab["stdout"]
    assert "tr.foo" in hostile["after"]["netns"]
