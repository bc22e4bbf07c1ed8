"""The packet detail screen: the chosen packet's summary, its full dissection tree and its bytes."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Static, Tree
from textual.widgets.tree import TreeNode

from labyrinth_tui.model.dissection import Dissection, DissectionField
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.sources import Source, StreamSpec
from labyrinth_tui.ui.widgets.fitted_footer import FittedFooter


def summary_lines(packet: PacketSummary) -> Text:
    text = Text.assemble(
        (f"#{packet.number} ", "bold"),
        (f"{packet.node} · {packet.interface}", "bold cyan"),
        f"   {packet.src} → {packet.dst}  {packet.protocol}  {packet.length} bytes\n",
        (packet.info, "italic"),
    )
    if packet.vni is not None:
        text.append(
            f"\n⛓ VXLAN vni {packet.vni}: {packet.outer_src}:{packet.outer_sport} → "
            f"{packet.outer_dst}:{packet.outer_dport}",
            style="magenta",
        )
    return text


class PacketDetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("e", "expand_all", "Expand all"),
    ]

    def __init__(self, source: Source | None, spec: StreamSpec, packet: PacketSummary) -> None:
        super().__init__()
        self.source = source
        self.spec = spec
        self.packet = packet
        self.dissection: Dissection | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="detail-body"):
            yield Static(summary_lines(self.packet), id="detail-summary", classes="pane")
            with Horizontal(id="detail-panes"):
                tree: Tree[DissectionField] = Tree("dissecting…", id="detail-tree", classes="pane")
                tree.border_title = "Dissection"
                yield tree
                hexpane = Static("", id="detail-hex", classes="pane")
                hexpane.border_title = "Bytes"
                yield hexpane
        yield FittedFooter()

    def on_mount(self) -> None:
        self.query_one("#detail-tree", Tree).focus()
        self.load()

    @work(group="dissect", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        tree = self.query_one("#detail-tree", Tree)
        if self.source is None:
            tree.root.set_label("no source")
            return
        try:
            found = await self.source.packet_detail(self.spec, self.packet)
        except Exception as exc:  # a dissection that fails is shown, not raised into the app
            tree.root.set_label(Text(f"dissection failed: {exc}", style="bold red"))
            return
        if found is None:
            tree.root.set_label(
                Text("this stream is not recorded as pcapng: no dissection (summary above)", style="dim")
            )
            return
        self.show(found)

    def show(self, dissection: Dissection) -> None:
        self.dissection = dissection
        tree = self.query_one("#detail-tree", Tree)
        tree.clear()
        tree.root.set_label(f"Frame {dissection.number}: {len(dissection.data)} bytes")
        for layer in dissection.layers:
            node = tree.root.add(
                Text(layer.showname, style="bold"), expand=layer.name in ("ip", "tcp", "udp", "dns")
            )
            for field in layer.fields:
                self._add(node, field)
        tree.root.expand()
        self.query_one("#detail-hex", Static).update("\n".join(dissection.hex_lines()))

    def _add(self, parent: TreeNode[DissectionField], field: DissectionField) -> None:
        if field.hidden:
            return
        if field.children:
            node = parent.add(field.showname or field.name, data=field)
            for child in field.children:
                self._add(node, child)
        else:
            parent.add_leaf(field.showname or f"{field.name}: {field.show}", data=field)

    def action_expand_all(self) -> None:
        self.query_one("#detail-tree", Tree).root.expand_all()
