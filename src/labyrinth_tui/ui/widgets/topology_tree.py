"""TopologyTree: cluster → nodes → interfaces, and pods → netns → veth pair, with glyphs by kind."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from labyrinth_tui.model.topology import Interface, InterfaceKind, Node, Pod, Topology

KIND_GLYPH = {
    InterfaceKind.VETH: ("⇄", "cyan"),
    InterfaceKind.VXLAN: ("⛓", "magenta"),
    InterfaceKind.BRIDGE: ("▦", "blue"),
    InterfaceKind.DEVICE: ("◉", "green"),
    InterfaceKind.LOOPBACK: ("↺", "dim"),
}


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
        super().__init__("no cluster yet", id=id, classes="pane")
        self.border_title = "Topology"
        self.show_root = True
        self.guide_depth = 3

    def show_topology(self, topology: Topology) -> None:
        expanded = self._expanded_paths()
        self.clear()
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
        label = Text.assemble(("▣ ", "bold"), (node.name, "bold"), f"  {node.address}")
        if not node.reachable:
            label.append(f"  unreachable: {node.error or 'no answer'}", style="bold red")
        elif node.partial:
            label.append(f"  partial: {node.error}", style="yellow")
        branch = self.root.add(label, data=TreeRef("node", node=node), expand=True)
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

    @staticmethod
    def _add_interface(parent: TreeNode[TreeRef], node: Node, iface: Interface) -> None:
        glyph, style = KIND_GLYPH[iface.kind]
        label = Text.assemble((f"{glyph} ", style), (iface.name, style))
        if iface.addresses:
            label.append("  " + " ".join(iface.addresses), style="dim")
        if iface.vxlan is not None:
            label.append(f"  vni {iface.vxlan.vni} :{iface.vxlan.port}", style="magenta")
        parent.add_leaf(label, data=TreeRef("interface", node=node, interface=iface))

    @staticmethod
    def _add_pod(parent: TreeNode[TreeRef], node: Node, pod: Pod) -> None:
        label = Text.assemble(("◆ ", "yellow"), (pod.qualified_name, "yellow"), f"  {pod.ip}")
        branch = parent.add(label, data=TreeRef("pod", node=node, pod=pod), expand=True)
        netns = branch.add(
            Text.assemble(("⌂ netns ", "dim"), pod.netns),
            data=TreeRef("netns", node=node, pod=pod),
            expand=True,
        )
        host = node.interface(pod.host_veth) if pod.host_veth else None
        if host is None and pod.host_veth:
            host = Interface(pod.host_veth, pod.host_ifindex or 0, InterfaceKind.VETH)
        pair = Text.assemble(("⇄ ", "cyan"), (pod.host_veth or "?", "cyan"), " ↔ ", ("eth0", "cyan"))
        netns.add_leaf(pair, data=TreeRef("interface", node=node, interface=host, pod=pod))

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
