"""Shared test fixtures: repository paths, root detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(
    not IS_ROOT,
    reason="NEEDS ROOT: network namespaces and sshd per node. CI runs as root; run `sudo make test`.",
)
