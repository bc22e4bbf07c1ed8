"""DetailsPanel: what the selected line of the tree is — addresses, routes, MTU, peer, VNI, processes, and on
the eBPF datapath the programs on an interface and a node's service map."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from labyrinth_tui.model.bpf import NodeBpf, lb_list
from labyrinth_tui.model.topology import Interface, Node, Pod
from labyrinth_tui.ui.widgets.topology_tree import TreeRef


def _grid() -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    return table


def interface_details(node: Node, iface: Interface, pod: Pod | None, bpf: NodeBpf | None = None) -> Table:
    table = _grid()
    table.add_row("interface", f"{iface.name} on {node.name}")
    table.add_row(
        "kind", f"{iface.kind.value}  ifindex {iface.ifindex}  mtu {iface.mtu or '?'}  {iface.state}"
    )
    if iface.mac:
        table.add_row("mac", iface.mac)
    if iface.addresses:
        table.add_row("addresses", " ".join(iface.addresses))
    if iface.master:
        table.add_row("master", iface.master)
    if iface.vxlan is not None:
        local = f"  local {iface.vxlan.local}" if iface.vxlan.local else ""
        table.add_row("vxlan", f"vni {iface.vxlan.vni}  udp {iface.vxlan.port}{local}")
    if pod is not None:
        table.add_row("peer", f"eth0 in {pod.netns} ({pod.qualified_name}, {pod.ip})")
    elif iface.peer_ifindex is not None:
        table.add_row("peer", f"ifindex {iface.peer_ifindex} in netns id {iface.link_netnsid}")
    for link in bpf.links if bpf is not None else ():
        if link.ifname == iface.name:
            table.add_row(
                link.kind,
                f"{link.prog_name}  prog {link.prog_id}  {link.direction}  {link.seen} packets"
                + (f", {link.translated} translated" if link.translated else ""),
            )
    table.add_row("", Text("enter: watch its packets live", style="dim italic"))
    return table


def pod_details(node: Node, pod: Pod) -> Table:
    table = _grid()
    table.add_row("pod", pod.qualified_name)
    table.add_row("ip", f"{pod.ip} on {node.name}")
    table.add_row("netns", pod.netns)
    table.add_row("veth", f"{pod.host_veth or '?'} (host) ↔ eth0 (pod)")
    if pod.gateway:
        table.add_row("gateway", pod.gateway)
    if pod.mtu:
        table.add_row("mtu", str(pod.mtu))
    for route in pod.routes:
        via = f" via {route.gateway}" if route.gateway else ""
        mtu = f" mtu {route.mtu}" if route.mtu else ""
        table.add_row("route", f"{route.dst}{via} dev {route.dev or '?'}{mtu}")
    if pod.processes:
        table.add_row("processes", "\n".join(pod.processes[:6]))
    return table


def node_details(node: Node, bpf: NodeBpf | None = None) -> Table:
    table = _grid()
    table.add_row("node", f"{node.name} ({node.role})")
    table.add_row("address", node.address)
    if not node.reachable:
        table.add_row("state", Text(f"unreachable: {node.error}", style="bold red"))
    if bpf is not None:
        note = f" ({bpf.error})" if bpf.error else ""
        table.add_row("datapath", f"eBPF, {len(bpf.links)} {bpf.attach} programs{note}")
        if bpf.services:
            # `cilium bpf lb list`'s layout: a frontend's slot 0, then one line per backend
            table.add_row("services", "\n".join(lb_list(bpf.services)))
    table.add_row("pods", str(len(node.pods)))
    table.add_row("interfaces", str(len(node.interfaces)))
    for route in node.routes[:8]:
        via = f" via {route.gateway}" if route.gateway else ""
        table.add_row("route", f"{route.dst}{via} dev {route.dev or '?'}")
    return table


class DetailsPanel(Static):
    """Follows the tree's highlighted line."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("[dim]Select a node, pod or interface.[/dim]", id=id, classes="pane")
        self.border_title = "Details"
        self.ref: TreeRef | None = None
        self.datapath: dict[str, NodeBpf] = {}

    def show(self, ref: TreeRef | None) -> None:
        self.ref = ref
        if ref is None or ref.node is None:
            self.update("[dim]Select a node, pod or interface.[/dim]")
            return
        bpf = self.datapath.get(ref.node.name)
        if ref.kind == "interface" and ref.interface is not None:
            self.update(interface_details(ref.node, ref.interface, ref.pod, bpf))
        elif ref.pod is not None:
            self.update(pod_details(ref.node, ref.pod))
        else:
            self.update(node_details(ref.node, bpf))

    def show_datapath(self, datapath: dict[str, NodeBpf]) -> None:
        """The nodes' programs as read now: the line shown follows their counters."""
        self.datapath = datapath
        self.show(self.ref)
