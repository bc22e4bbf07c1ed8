"""TopologyTree: cluster → nodes → interfaces, and pods → netns → veth pair, with glyphs by kind."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from labyrinth_tui.model.fit import Field, fit_fields
from labyrinth_tui.model.topology import Interface, InterfaceKind, Node, Pod, Topology

KIND_GLYPH = {
    InterfaceKind.VETH: ("⇄", "cyan"),
    InterfaceKind.VXLAN: ("⛓", "magenta"),
    InterfaceKind.BRIDGE: ("▦", "blue"),
    InterfaceKind.DEVICE: ("◉", "green"),
    InterfaceKind.LOOPBACK: ("↺", "dim"),
}


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a label with its style; the label is fitted to the tree's width piece by piece."""

    field: Field
    style: str = ""


def fitted_label(parts: tuple[Part, ...], width: int) -> Text:
    """The parts that fit in `width` cells: the name first (its middle cut, its suffix kept), then the
    addresses, then the rest (model.fit's order)."""
    texts = fit_fields([p.field for p in parts], width, sep=" ")
    label = Text()
    for part, text in zip(parts, texts, strict=True):
        if text is not None:
            if label:
                label.append(" ")
            label.append(text, style=part.style)
    return label


@dataclass(frozen=True, slots=True)
class TreeRef:
    """What a line of the tree stands for, with the node it belongs to."""

    kind: str  # cluster | node | interface | pod | netns | group
    node: Node | None = None
    interface: Interface | None = None
    pod: Pod | None = None
    topology: Topology | None = None


class TopologyTree(Tree[TreeRef]):
    """The tree of what the source discovered. Enter on an interface opens its live stream."""

    def __init__(self, *, id: str | None = None) -> None:
        self._parts: dict[int, tuple[Part, ...]] = {}  # node id → label pieces (before Tree's init renders)
        super().__init__("no cluster yet", id=id, classes="pane")
        self.border_title = "Topology"
        self.show_root = True
        self.guide_depth = 3

    def render_label(self, node: TreeNode[TreeRef], base_style: Style, style: Style) -> Text:
        """Each line fitted to the width the tree has now (recomputed on resize): no line runs past the
        edge, so the tree never scrolls sideways and a pod's distinguishing suffix stays in sight."""
        parts = self._parts.get(node.id)
        if parts is None:
            return super().render_label(node, base_style, style)
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        toggle = len(self.ICON_NODE) if node.allow_expand else 0
        room = self.scrollable_content_region.width - depth * self.guide_depth - toggle
        label = fitted_label(parts, max(1, room))
        label.stylize(style)
        if node.allow_expand:
            icon = self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE
            return Text.assemble((icon, base_style + Style(bold=True)), label)
        return label

    def _add(
        self, parent: TreeNode[TreeRef], parts: tuple[Part, ...], data: TreeRef, expand: bool | None
    ) -> TreeNode[TreeRef]:
        """A line of the tree made of parts; `expand` None makes a leaf."""
        full = Text(" ").join(Text(p.field.text, style=p.style) for p in parts)
        node = parent.add_leaf(full, data=data) if expand is None else parent.add(full, data, expand=expand)
        self._parts[node.id] = parts
        return node

    def show_topology(self, topology: Topology) -> None:
        expanded = self._expanded_paths()
        self.clear()
        self._parts.clear()
        self.root.set_label(Text.assemble(("☸ ", "bold"), (topology.cluster, "bold")))
        self.root.data = TreeRef("cluster", topology=topology)
        for node in topology.nodes:
            self._add_k8s_node(node, expanded)
        self.root.expand()

    def _expanded_paths(self) -> set[str]:
        """Keep what the user opened across refreshes of the topology."""
        paths: set[str] = set()

        def walk(node: TreeNode[TreeRef], path: str) -> None:
            for child in node.children:
                label = child.label if isinstance(child.label, str) else child.label.plain
                here = f"{path}/{label}"
                if child.is_expanded:
                    paths.add(here)
                walk(child, here)

        walk(self.root, "")
        return paths

    def _add_k8s_node(self, node: Node, expanded: set[str]) -> None:
        parts = [
            Part(Field("▣", required=True), "bold"),
            Part(Field(node.name, 0, min_width=8, required=True), "bold"),
            Part(Field(f" {node.address}", 1)),
        ]
        if not node.reachable:
            parts.append(Part(Field(f" unreachable: {node.error or 'no answer'}", 2, 14), "bold red"))
        elif node.partial:
            parts.append(Part(Field(f" partial: {node.error}", 2, 10), "yellow"))
        branch = self._add(self.root, tuple(parts), TreeRef("node", node=node), expand=True)
        label = Text(" ").join(Text(p.field.text) for p in parts)
        if not node.reachable:
            return
        pods = branch.add(
            Text(f"pods ({len(node.pods)})", style="dim"), data=TreeRef("group", node=node), expand=True
        )
        for pod in node.pods:
            self._add_pod(pods, node, pod)
        ifaces = branch.add(
            Text(f"interfaces ({len(node.interfaces)})", style="dim"),
            data=TreeRef("group", node=node),
            expand=f"/{label.plain}/interfaces ({len(node.interfaces)})" in expanded,
        )
        for iface in node.interfaces:
            self._add_interface(ifaces, node, iface)

    def _add_interface(self, parent: TreeNode[TreeRef], node: Node, iface: Interface) -> None:
        glyph, style = KIND_GLYPH[iface.kind]
        parts = [
            Part(Field(glyph, required=True), style),
            Part(Field(iface.name, 0, min_width=8, required=True), style),
        ]
        if iface.addresses:
            parts.append(Part(Field(" " + " ".join(iface.addresses), 1, min_width=16), "dim"))
        if iface.vxlan is not None:
            parts.append(Part(Field(f" vni {iface.vxlan.vni} :{iface.vxlan.port}", 2), "magenta"))
        self._add(parent, tuple(parts), TreeRef("interface", node=node, interface=iface), None)

    def _add_pod(self, parent: TreeNode[TreeRef], node: Node, pod: Pod) -> None:
        parts = (
            Part(Field("◆", required=True), "yellow"),
            Part(Field(pod.qualified_name, 0, min_width=20, required=True), "yellow"),
            Part(Field(f" {pod.ip}", 1)),
        )
        branch = self._add(parent, parts, TreeRef("pod", node=node, pod=pod), expand=True)
        netns = self._add(
            branch,
            (Part(Field("⌂ netns", required=True), "dim"), Part(Field(pod.netns, 0, 12, required=True))),
            TreeRef("netns", node=node, pod=pod),
            expand=True,
        )
        host = node.interface(pod.host_veth) if pod.host_veth else None
        if host is None and pod.host_veth:
            host = Interface(pod.host_veth, pod.host_ifindex or 0, InterfaceKind.VETH)
        pair = (
            Part(Field("⇄", required=True), "cyan"),
            Part(Field(pod.host_veth or "?", 0, min_width=8, required=True), "cyan"),
            Part(Field("↔ eth0", 1), "cyan"),
        )
        self._add(netns, pair, TreeRef("interface", node=node, interface=host, pod=pod), None)

    def interface_refs(self) -> list[TreeRef]:
        """Every interface line, in tree order (the command palette lists them)."""
        refs: list[TreeRef] = []

        def walk(node: TreeNode[TreeRef]) -> None:
            if node.data is not None and node.data.kind == "interface" and node.data.interface is not None:
                refs.append(node.data)
            for child in node.children:
                walk(child)

        walk(self.root)
        return refs
