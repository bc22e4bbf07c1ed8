"""FittedFooter: the footer's keys, the least needed hidden first when the terminal is too narrow for all."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# lower gives way later: leaving, help and the pane switch stay longest; anything unlisted sits mid-way.
# `?` lists every key, so a hidden one is still one keypress away.
ACTION_RANK = {
    "quit": 0,
    "help": 0,
    "pop_screen": 0,
    "next_view": 1,
    "select": 1,
    "toggle_detail": 1,
    "journey": 2,
    "tour": 2,
    "open_journey": 2,
    "rerun": 3,
    "toggle_pause": 3,
    "filter": 3,
    "close": 4,
    "focus_tree": 5,
    "clear": 5,
    "expand_all": 5,
    "collapse_all": 6,
    "toggle_layout": 6,
    "toggle_provision": 7,
    "export": 7,
    "command_palette": 6,
}
DEFAULT_RANK = 4


def action_rank(action: str) -> int:
    """'app.pop_screen' and 'cursor(-1)' are ranked by their bare name."""
    name = action.split("(", 1)[0].rsplit(".", 1)[-1]
    return ACTION_RANK.get(name, DEFAULT_RANK)


def key_width(key: FooterKey, compact: bool) -> int:
    """Cells a FooterKey takes: its key and description with Footer's padding (one less when compact)."""
    pad = 2 if compact else 3
    return cell_len(key.key_display) + cell_len(key.description) + pad


class FittedFooter(Footer):
    """Textual's Footer, compact below the app's narrow breakpoint, hiding keys by rank until the rest fit."""

    def compose(self) -> ComposeResult:
        yield from super().compose()
        self.call_after_refresh(self.fit)

    def on_resize(self) -> None:
        self.fit()

    def fit(self) -> None:
        if not self.is_mounted:
            return
        self.compact = self.screen.has_class("-narrow")
        keys = list(self.query(FooterKey))
        room = self.size.width
        total = sum(key_width(k, self.compact) for k in keys)
        hidden: set[int] = set()
        for key in sorted(keys, key=lambda k: -action_rank(k.action)):
            if total <= room:
                break
            hidden.add(id(key))
            total -= key_width(key, self.compact)
        for key in keys:
            key.display = id(key) not in hidden
