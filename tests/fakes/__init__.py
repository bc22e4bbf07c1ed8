"""Fakes of remote services, test helpers and recorded data the tests share (none imports tests/unit)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"  # outputs recorded from real tools (ip -j, iptables-save)
