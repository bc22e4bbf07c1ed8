"""Integration fixtures: a real lab with a unique prefix, always torn down, and helpers to run in it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IS_ROOT

LABYRINTH = [sys.executable, "-m", "labyrinth_tui"]


def labyrinth(*args: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LABYRINTH, *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
        **kwargs,  # type: ignore[call-overload]
    )


def unique_prefix(tag: str) -> str:
    # LABYRINTH_TEST_PREFIX: a start of names of your own on a machine shared with other labs
    return f"{os.environ.get('LABYRINTH_TEST_PREFIX', 't')}{tag}{os.getpid() % 100000}"


@pytest.fixture(scope="module")
def lab_prefix() -> Iterator[str]:
    """A lab built by the real CLI for this module, removed afterwards even if a test fails."""
    if not IS_ROOT:
        pytest.skip("NEEDS ROOT: the lab builds network namespaces. CI runs as root; run `sudo make test`.")
    prefix = unique_prefix("m")
    try:
        labyrinth("lab", "up", "--prefix", prefix)
        yield prefix
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@pytest.fixture(scope="module")
def lab_state(lab_prefix: str) -> dict[str, object]:
    import json

    out = labyrinth("lab", "status", "--prefix", lab_prefix, "--json")
    state: dict[str, object] = json.loads(out.stdout)
    return state


def state_dir(prefix: str) -> Path:
    return Path("/run/labyrinth") / prefix
