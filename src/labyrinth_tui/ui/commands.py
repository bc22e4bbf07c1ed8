"""Command palette commands: open any interface's stream, switch layout, export, theme."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.types import IgnoreReturnCallbackType

from labyrinth_tui.sources import StreamSpec
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree


class LabyrinthCommands(Provider):
    """Everything the keys do, findable by name, plus one command per interface of the tree."""

    def _commands(self) -> list[tuple[str, str, IgnoreReturnCallbackType]]:
        screen = self.screen  # the screen the palette was opened over (app.screen is the palette)
        if not isinstance(screen, MainScreen):
            return []
        found: list[tuple[str, str, IgnoreReturnCallbackType]] = [
            ("Layout: grid / tabs", "show every stream, or one at a time", screen.action_toggle_layout),
            ("Export stream as pcapng", "the focused stream, into the current folder", screen.action_export),
            ("Provisioning: show / hide", "the provisioning pane", screen.action_toggle_provision),
            ("Theme: light / dark", "switch the colour theme", self.app.action_toggle_dark),
            (
                "Journey: follow the article's packet",
                "start the nc traffic, captures on every hop",
                screen.action_journey,
            ),
            ("Tour: the article as a checklist", "each step ✓ or ✗ with what was seen", screen.action_tour),
            (
                "Lab up (or refresh the tree)",
                "bring the lab up if needed and rediscover",
                screen.action_lab_up,
            ),
            ("Lab down", "remove the lab and everything it made", screen.action_lab_down),
            (
                "Record the journey",
                "into ./labyrinth-recording-<time>/ for labyrinth replay",
                screen.action_record,
            ),
        ]
        if getattr(self.app, "follow", False):  # a viewer: only what changes their own view
            local = (screen.action_toggle_layout, screen.action_toggle_provision, self.app.action_toggle_dark)
            return [command for command in found if command[2] in local]
        for ref in screen.query_one(TopologyTree).interface_refs():
            assert ref.node is not None and ref.interface is not None
            spec = StreamSpec(ref.node.name, ref.interface.name)
            where = f" (pod {ref.pod.qualified_name})" if ref.pod is not None else ""
            found.append(
                (
                    f"Open stream {spec.node} · {spec.interface}",
                    f"live packets{where}",
                    partial(screen.open_stream, spec),
                )
            )
        return found

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
