"""Snapshot SVGs live under the top-level snapshots/<test module>/, not tests/__snapshots__.

Why a patch of the extension's dirname: pytest-textual-snapshot's only option is --snapshot-report, and its
snap_compare fixture hard-codes SVGImageExtension (`snapshot.use_extension(SVGImageExtension)`), so
neither an option nor a subclass can move the files (read .venv/…/pytest_textual_snapshot.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_textual_snapshot import SVGImageExtension

SNAPSHOTS = Path(__file__).resolve().parent.parent.parent / "snapshots"


def _dirname(cls: type[SVGImageExtension], *, test_location: Any) -> str:
    return str(SNAPSHOTS / Path(test_location.filepath).stem)


SVGImageExtension.dirname = classmethod(_dirname)  # type: ignore[method-assign,assignment]
