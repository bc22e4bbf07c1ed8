"""A small bundle shaped like the article's journey, written with the real bundle writer (no root needed)."""

from __future__ import annotations

from pathlib import Path

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.model.topology import Interface, InterfaceKind, Node, Pod, Topology, VxlanInfo
from labyrinth_tui.sources.base import StreamSpec
from labyrinth_tui.sources.bundle_writer import write_bundle
from tests.fakes.article import (
    CLIENT,
    CLIENT_POD,
    CLIENT_VETH,
    CLUSTER_IP,
    HOST_VETH_IFINDEX,
    NODE0,
    NODE0_IP,
    NODE1,
    NODE1_IP,
    NODE2,
    NODE2_IP,
    SERVER,
    SERVER_POD,
    SERVER_VETH,
    SERVICE_PORT,
    VNI,
    VXLAN_PORT,
)


def _node(name: str, address: str, pod: Pod) -> Node:
    """A worker as `ip -j` shows it: its devices, then the pod's host veth (peer: the pod's eth0)."""
    assert pod.host_veth is not None and pod.gateway is not None
    interfaces = (
        Interface("lo", 1, InterfaceKind.LOOPBACK, 65536, "", "UNKNOWN", ("127.0.0.1/8",)),
        Interface("ens4", 2, InterfaceKind.VETH, 1460, "42:01:0a:a8:00:04", "UP", (f"{address}/24",)),
        Interface("cilium_net", 3, InterfaceKind.VETH, 1460, "", "UP"),
        Interface("cilium_host", 4, InterfaceKind.VETH, 1460, "", "UP", (f"{pod.gateway}/32",)),
        Interface(
            "cilium_vxlan",
            5,
            InterfaceKind.VXLAN,
            1410,
            "",
            "UNKNOWN",
            (),
            vxlan=VxlanInfo(VNI, VXLAN_PORT, address),
        ),
        Interface(
            pod.host_veth, HOST_VETH_IFINDEX, InterfaceKind.VETH, 1460, "", "UP", (), None, 1, pod.pod_ifindex
        ),
    )
    return Node(name, address, interfaces=interfaces, pods=(pod,))


def article_topology() -> Topology:
    return Topology(
        "lab article",
        (
            Node(NODE0, NODE0_IP, role="control-plane"),
            _node(NODE1, NODE1_IP, CLIENT_POD),
            _node(NODE2, NODE2_IP, SERVER_POD),
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
        sport, dport = (port, SERVICE_PORT) if forward else (SERVICE_PORT, port)
        outer = (
            {
                "outer_src": NODE1_IP if forward else NODE2_IP,
                "outer_dst": NODE2_IP if forward else NODE1_IP,
                "outer_sport": 45304,
                "outer_dport": VXLAN_PORT,
                "vni": VNI,
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
    n = packets_per_stream
    streams = {
        StreamSpec(NODE1, CLIENT_VETH): handshake(NODE1, CLIENT_VETH, CLIENT, CLUSTER_IP, 100.0, n=n),
        StreamSpec(NODE1, "cilium_vxlan"): handshake(NODE1, "cilium_vxlan", CLIENT, SERVER, 100.0001, n=n),
        StreamSpec(NODE1, "ens4"): handshake(NODE1, "ens4", CLIENT, SERVER, 100.0002, vxlan=True, n=n),
        StreamSpec(NODE2, SERVER_VETH): handshake(NODE2, SERVER_VETH, CLIENT, SERVER, 100.0005, n=n),
    }
    steps = [
        Step("lab", "namespaces", StepState.DONE, 1, 1, 0.009),
        Step("lab", "links", StepState.DONE, 1, 1, 0.017),
        Step(NODE1, "sshd", StepState.DONE, 1, 1, 0.002),
        Step(NODE2, "sshd", StepState.RUNNING, 0, 1, 0.001, f"{NODE2_IP}:22"),
    ]
    return write_bundle(root, article_topology(), streams, steps=steps, title="article (synthetic)")
