"""The help screen: every binding of the app and of the screen under it, generated, never hand-kept."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
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
        rows: list[str] = []
        seen: set[str] = set()
        below = [screen for screen in self.app.screen_stack if screen is not self]
        for owner in [*below[-1:], self.app]:
            for binding in getattr(owner, "BINDINGS", []):
                if not isinstance(binding, Binding):
                    continue
                key = binding.key_display or binding.key
                if key in seen:
                    continue
                seen.add(key)
                rows.append(f"  [b]{key:>12}[/b]  {binding.description or binding.action}")
        return "\n".join(rows)
