"""The help screen: every key of the focused widget, its containers, the screen under it and the app."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

INTRO = (
    "[b]labyrinth[/b] follows one packet from a pod on one node, through DNS, a ClusterIP, NAT and a "
    "VXLAN tunnel, into a pod on another node."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(INTRO, id="help-intro")
            yield Static(self._bindings_table(), id="help-bindings")
            yield Static("[dim]esc · q · ? to close[/dim]", id="help-close")

    def _bindings_table(self) -> str:
        """Generated from the bindings Textual itself would dispatch, so it cannot drift from them."""
        below = [screen for screen in self.app.screen_stack if screen is not self]
        return "\n".join(f"  [b]{escape(key):>12}[/b]  {escape(what)}" for key, what in keys_of(below[-1]))


def keys_of(screen: Screen[object]) -> list[tuple[str, str]]:
    """(keys as shown, what they do) for every binding active on `screen`: the focused widget's first,
    then its containers', the screen's and the app's. Keys bound to one action of one widget share a row."""
    grouped: dict[tuple[int, str], tuple[list[str], str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        keys, _ = grouped.setdefault(
            (id(active.node), binding.action), ([], binding.description or binding.action)
        )
        shown = binding.key_display or screen.app.get_key_display(binding)
        if shown not in keys:
            keys.append(shown)
    return [(" · ".join(keys), what) for keys, what in grouped.values()]
