"""A small bundle shaped like the article's journey, written with the real bundle writer (no root needed)."""

from __future__ import annotations

from pathlib import Path

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.model.topology import Interface, InterfaceKind, Node, Pod, Topology, VxlanInfo
from labyrinth_tui.sources.base import StreamSpec
from labyrinth_tui.sources.bundle_writer import write_bundle

LXC1 = "lxc7dc050ebabd6"
LXC2 = "lxc3afb1f126f2c"


def _node(name: str, address: str, gw: str, pods: tuple[Pod, ...], lxcs: list[str]) -> Node:
    interfaces = (
        Interface("lo", 1, InterfaceKind.LOOPBACK, 65536, "", "UNKNOWN", ("127.0.0.1/8",)),
        Interface("ens4", 2, InterfaceKind.VETH, 1460, "42:01:0a:a8:00:04", "UP", (f"{address}/24",)),
        Interface("cilium_net", 3, InterfaceKind.VETH, 1460, "", "UP"),
        Interface("cilium_host", 4, InterfaceKind.VETH, 1460, "", "UP", (f"{gw}/32",)),
        Interface(
            "cilium_vxlan", 5, InterfaceKind.VXLAN, 1410, "", "UNKNOWN", (), vxlan=VxlanInfo(2, 8472, address)
        ),
        *(
            Interface(lxc, 9 + 2 * i, InterfaceKind.VETH, 1460, "", "UP", (), None, i + 1, 8)
            for i, lxc in enumerate(lxcs)
        ),
    )
    return Node(name, address, interfaces=interfaces, pods=pods)


def article_topology() -> Topology:
    wrk1 = Pod(
        "wrk-1",
        "node-wrk-1-ubuntu24-684f7d8fd6-2zncq",
        "10.0.1.15",
        "5b58d4f1-eb3e-4cb7",
        LXC1,
        9,
        8,
        "10.0.1.49",
    )
    wrk2 = Pod(
        "wrk-2",
        "node-wrk-2-ubuntu24-85748464f7-mwmrt",
        "10.0.2.215",
        "ceb7eaea-1923-4233",
        LXC2,
        9,
        8,
        "10.0.2.244",
    )
    return Topology(
        "lab article",
        (
            Node("node-0", "10.168.0.2", role="control-plane"),
            _node("node-1", "10.168.0.4", "10.0.1.49", (wrk1,), [LXC1]),
            _node("node-2", "10.168.0.5", "10.0.2.244", (wrk2,), [LXC2]),
        ),
    )


def handshake(
    node: str, iface: str, src: str, dst: str, t0: float, *, vxlan: bool = False, n: int = 3
) -> list[PacketSummary]:
    """SYN / SYN-ACK / ACK as seen on one interface, repeated n/3 times with growing ports."""
    out = []
    flags = [
        ("SYN", "[SYN] Seq=0 Win=64390 Len=0 MSS=1370"),
        ("SYN,ACK", "[SYN, ACK] Seq=0 Ack=1 Win=65184 Len=0"),
        ("ACK", "[ACK] Seq=1 Ack=1 Win=64512 Len=0"),
    ]
    for i in range(n):
        flag, info = flags[i % 3]
        port = 38430 + i // 3
        forward = flag != "SYN,ACK"
        a, b = (src, dst) if forward else (dst, src)
        sport, dport = (port, 9999) if forward else (9999, port)
        outer = (
            {
                "outer_src": "10.168.0.4" if forward else "10.168.0.5",
                "outer_dst": "10.168.0.5" if forward else "10.168.0.4",
                "outer_sport": 45304,
                "outer_dport": 8472,
                "vni": 2,
            }
            if vxlan
            else {}
        )
        out.append(
            PacketSummary(
                t0 + i * 0.0005,
                node,
                iface,
                i + 1,
                a,
                b,
                "TCP",
                74 if flag != "ACK" else 66,
                f"{sport} → {dport} {info}",
                sport,
                dport,
                flag,
                1000 + i,
                0,
                4242 + i,
                **outer,
            )
        )
    return out


def write_article_bundle(root: Path, packets_per_stream: int = 3) -> Path:
    streams = {
        StreamSpec("node-1", LXC1): handshake(
            "node-1", LXC1, "10.0.1.15", "10.105.134.33", 100.0, n=packets_per_stream
        ),
        StreamSpec("node-1", "cilium_vxlan"): handshake(
            "node-1", "cilium_vxlan", "10.0.1.15", "10.0.2.215", 100.0001, n=packets_per_stream
        ),
        StreamSpec("node-1", "ens4"): handshake(
            "node-1", "ens4", "10.0.1.15", "10.0.2.215", 100.0002, vxlan=True, n=packets_per_stream
        ),
        StreamSpec("node-2", LXC2): handshake(
            "node-2", LXC2, "10.0.1.15", "10.0.2.215", 100.0005, n=packets_per_stream
        ),
    }
    steps = [
        Step("lab", "namespaces", StepState.DONE, 1, 1, 0.009),
        Step("lab", "links", StepState.DONE, 1, 1, 0.017),
        Step("node-1", "sshd", StepState.DONE, 1, 1, 0.002),
        Step("node-2", "sshd", StepState.RUNNING, 0, 1, 0.001, "10.168.0.5:22"),
    ]
    return write_bundle(root, article_topology(), streams, steps=steps, title="article (synthetic)")
