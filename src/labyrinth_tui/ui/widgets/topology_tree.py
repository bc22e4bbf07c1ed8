"""TopologyTree: cluster → nodes → interfaces, and pods → netns → veth pair, with glyphs by kind."""

from __future__ import annotations

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

TreeData = Node | Pod | Interface | Topology | str


class TopologyTree(Tree[TreeData]):
    """The tree of what the source discovered. Node data is the model object the line stands for."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("no cluster yet", id=id, classes="pane")
        self.border_title = "Topology"
        self.show_root = True

    def show_topology(self, topology: Topology) -> None:
        self.clear()
        self.root.set_label(Text.assemble(("☸ ", "bold"), (topology.cluster, "bold")))
        self.root.data = topology
        for node in topology.nodes:
            self._add_k8s_node(node)
        self.root.expand()

    def _add_k8s_node(self, node: Node) -> None:
        label = Text.assemble(("▣ ", "bold"), (node.name, "bold"), f"  {node.address}")
        if not node.reachable:
            label.append(f"  unreachable: {node.error or 'no answer'}", style="bold red")
        elif node.partial:
            label.append(f"  partial: {node.error}", style="yellow")
        branch = self.root.add(label, data=node, expand=True)
        if not node.reachable:
            return
        ifaces = branch.add(Text("interfaces", style="dim"), data="interfaces")
        for iface in node.interfaces:
            self._add_interface(ifaces, iface)
        pods = branch.add(Text("pods", style="dim"), data="pods", expand=True)
        for pod in node.pods:
            self._add_pod(pods, node, pod)

    @staticmethod
    def _add_interface(parent: TreeNode[TreeData], iface: Interface) -> None:
        glyph, style = KIND_GLYPH[iface.kind]
        label = Text.assemble((f"{glyph} ", style), (iface.name, style))
        if iface.addresses:
            label.append("  " + " ".join(iface.addresses), style="dim")
        if iface.vxlan is not None:
            label.append(f"  vni {iface.vxlan.vni} :{iface.vxlan.port}", style="magenta")
        parent.add_leaf(label, data=iface)

    @staticmethod
    def _add_pod(parent: TreeNode[TreeData], node: Node, pod: Pod) -> None:
        label = Text.assemble(("◆ ", "yellow"), (pod.qualified_name, "yellow"), f"  {pod.ip}")
        branch = parent.add(label, data=pod, expand=True)
        netns = branch.add(Text.assemble(("⌂ netns ", "dim"), pod.netns), data=pod, expand=True)
        pair = Text.assemble(("⇄ ", "cyan"), (pod.host_veth or "?", "cyan"), " ↔ ", ("eth0", "cyan"))
        host = node.interface(pod.host_veth) if pod.host_veth else None
        netns.add_leaf(pair, data=host if host is not None else pod)
