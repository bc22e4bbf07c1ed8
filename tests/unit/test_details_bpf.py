"""The details panel on the eBPF datapath: an interface's programs, a node's service map (the recording's)."""

from __future__ import annotations

from rich.console import Console

from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE, Bundle
from labyrinth_tui.ui.widgets.details_panel import interface_details, node_details


def _text(renderable: object) -> str:
    console = Console(width=100, record=True)
    console.print(renderable)
    return console.export_text()


def test_an_interface_lists_its_programs_and_a_node_its_service_map_like_cilium() -> None:
    bundle = Bundle.load(ARTICLE_BUNDLE)
    node1 = next(n for n in bundle.topology.nodes if n.name == "node-1")
    bpf = {n.node: n for n in bundle.datapath}["node-1"]
    vxlan = next(i for i in node1.interfaces if i.name == "cilium_vxlan")
    shown = _text(interface_details(node1, vxlan, None, bpf))
    programs = [ln for ln in bpf.links if ln.ifname == "cilium_vxlan"]
    assert [(p.prog_name, p.direction) for p in programs] == [
        ("cil_from_overlay", "ingress"),
        ("cil_to_overlay", "egress"),
    ]
    for p in programs:
        assert f"{p.prog_name}  prog {p.prog_id}  {p.direction}  {p.seen} packets" in shown
    node = _text(node_details(node1, bpf))
    assert f"eBPF, {len(bpf.links)} tcx programs" in node
    assert "SERVICE ADDRESS" in node
    assert "10.105.134.33:9999/TCP (1)  10.0.2.215:9999/TCP" in node
    assert "10.96.0.10:53/UDP (1)" in node
    # an iptables lab's node, or a recording without programs: no datapath rows at all
    assert "datapath" not in _text(node_details(node1)) and "tcx" not in _text(
        interface_details(node1, vxlan, None)
    )
