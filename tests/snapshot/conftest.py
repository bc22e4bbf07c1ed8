"""Snapshot SVGs live under the top-level snapshots/<test module>/, not tests/__snapshots__."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_textual_snapshot import SVGImageExtension

SNAPSHOTS = Path(__file__).resolve().parent.parent.parent / "snapshots"


def _dirname(cls: type[SVGImageExtension], *, test_location: Any) -> str:
    return str(SNAPSHOTS / Path(test_location.filepath).stem)


SVGImageExtension.dirname = classmethod(_dirname)  # type: ignore[method-assign,assignment]
