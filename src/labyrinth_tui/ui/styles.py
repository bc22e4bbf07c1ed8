"""Where the app's .tcss files live: top-level styles/ in a checkout, labyrinth_tui/styles in a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent

# below this many columns the app is "narrow": the main screen shows one pane at a time (topology,
# streams, details) and the journey stacks each hop on several lines; 80×24 is the case to serve
NARROW_BELOW = 100
# from here the journey's evidence has room (~40 columns) beside a hop's 136; below it goes under the hop
EVIDENCE_BESIDE = 180


def styles_dir() -> Path:
    installed = _PACKAGE_DIR / "styles"
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent.parent / "styles"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"no styles/ found beside {_PACKAGE_DIR} (broken install?)")


def stylesheets() -> list[Path]:
    """app.tcss (theme variables) first, then one file per screen, in a stable order."""
    folder = styles_dir()
    rest = sorted(p for p in folder.glob("*.tcss") if p.name != "app.tcss")
    return [folder / "app.tcss", *rest]
