"""The article's connection as packet observations: what tshark printed on each hop of node-1 and node-2."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import count

from labyrinth_tui.journey.roles import InterfaceRole, Role
from labyrinth_tui.model.packets import PacketSummary
from tests.fakes.article import (
    CLIENT,
    CLIENT_VETH,
    CLUSTER_IP,
    DNS_POD,
    KUBE_DNS,
    NODE1,
    NODE1_IP,
    NODE2,
    NODE2_IP,
    SERVER,
    SERVER_VETH,
    SERVICE_NAME,
    SERVICE_PORT,
    VNI,
    VXLAN_OVERHEAD,
    VXLAN_PORT,
)

ROLES = {
    (NODE1, CLIENT_VETH): InterfaceRole(Role.HOST_VETH, pod_ip=CLIENT),
    (NODE1, "cilium_vxlan"): InterfaceRole(Role.OVERLAY),
    (NODE1, "ens4"): InterfaceRole(Role.UNDERLAY, node_ip=NODE1_IP),
    (NODE2, "ens4"): InterfaceRole(Role.UNDERLAY, node_ip=NODE2_IP),
    (NODE2, "cilium_vxlan"): InterfaceRole(Role.OVERLAY),
    (NODE2, SERVER_VETH): InterfaceRole(Role.HOST_VETH, pod_ip=SERVER),
}
CAPTURED = tuple(ROLES)

# the SYN's six hops, client to server; a reply crosses them backwards
PATH = (
    (NODE1, CLIENT_VETH),
    (NODE1, "cilium_vxlan"),
    (NODE1, "ens4"),
    (NODE2, "ens4"),
    (NODE2, "cilium_vxlan"),
    (NODE2, SERVER_VETH),
)
# µs after the previous hop: bpf redirect, encap, the wire, decap, redirect
HOP_DELAYS = (0.0, 30e-6, 20e-6, 150e-6, 25e-6, 15e-6)


@dataclass
class Capture:
    """Builds what each stream saw. node clocks: node → seconds that node's clock is ahead."""

    skew: dict[str, float] = field(default_factory=dict)
    observations: list[PacketSummary] = field(default_factory=list)
    _numbers: dict[tuple[str, str], Iterator[int]] = field(default_factory=dict)
    _outer_port: Iterator[int] = field(default_factory=lambda: count(45304))

    def send(
        self,
        t0: float,
        packet: PacketSummary,
        drop_after: int | None = None,
        skip: tuple[tuple[str, str], ...] = (),
    ) -> list[PacketSummary]:
        """The packet as the client pod sent it (or as the server pod sent it, for a reply), on each hop.

        Addresses are the sender's: a request to the ClusterIP is DNATed after the client's lxc, a reply
        from the pod IP is un-DNATed before it. drop_after: lost after that many hops (of the six).
        skip: streams whose capture missed this packet (it went on).
        """
        reply = packet.src in (SERVER, DNS_POD)
        path = PATH[::-1] if reply else PATH
        # kube-dns's pod has its own lxc on node-2, which nobody captures: its packets show 5 hops
        to_dns_pod = DNS_POD in (packet.src, _backend(packet.dst))
        outer_sport = next(self._outer_port)
        seen: list[PacketSummary] = []
        t = t0
        for i, ((node, iface), delay) in enumerate(zip(path, HOP_DELAYS, strict=True)):
            if drop_after is not None and i >= drop_after:
                break
            t += delay
            if (to_dns_pod and (node, iface) == (NODE2, SERVER_VETH)) or (node, iface) in skip:
                continue
            p = packet
            on_client_veth = (node, iface) == (NODE1, CLIENT_VETH)
            if not reply and not on_client_veth:
                p = replace(p, dst=_backend(p.dst))
            if reply and on_client_veth:
                p = replace(p, src=_frontend(p.src, p.sport))
            if iface == "ens4":
                src_ip, dst_ip = (NODE2_IP, NODE1_IP) if reply else (NODE1_IP, NODE2_IP)
                p = replace(
                    p,
                    length=p.length + VXLAN_OVERHEAD,
                    outer_src=src_ip,
                    outer_dst=dst_ip,
                    outer_sport=outer_sport,
                    outer_dport=VXLAN_PORT,
                    vni=VNI,
                )
            numbers = self._numbers.setdefault((node, iface), count(1))
            seen.append(
                replace(p, ts=t + self.skew.get(node, 0.0), node=node, interface=iface, number=next(numbers))
            )
        self.observations.extend(seen)
        return seen


def _backend(ip: str) -> str:
    return {CLUSTER_IP: SERVER, KUBE_DNS: DNS_POD}.get(ip, ip)


def _frontend(ip: str, _port: int | None) -> str:
    return {SERVER: CLUSTER_IP, DNS_POD: KUBE_DNS}.get(ip, ip)


def tcp(
    sport: int,
    dport: int,
    flags: str,
    seq: int,
    ack: int,
    ip_id: int,
    *,
    reply: bool = False,
    length: int = 74,
    payload_hash: int | None = None,
) -> PacketSummary:
    """A TCP segment as its sender put it on the wire (client → ClusterIP, or server pod → client)."""
    src, dst = (SERVER, CLIENT) if reply else (CLIENT, CLUSTER_IP)
    return PacketSummary(
        ts=0.0,
        node="",
        interface="",
        number=0,
        src=src,
        dst=dst,
        protocol="TCP",
        length=length,
        info=f"{sport} → {dport} [{flags.replace(',', ', ')}] Seq={seq} Ack={ack}",
        sport=sport,
        dport=dport,
        tcp_flags=flags,
        seq=seq,
        ack=ack,
        ip_id=ip_id,
        payload_hash=payload_hash,
    )


def dns(
    sport: int,
    dns_id: int,
    qtype: str,
    name: str,
    *,
    answer: str | None = None,
    nxdomain: bool = False,
    response: bool = False,
    ip_id: int = 0,
) -> PacketSummary:
    """A DNS query from the client to kube-dns, or kube-dns's pod answering it (tshark's info line)."""
    if response:
        status = "No such name " if nxdomain else ""
        tail = " SOA ns.dns.cluster.local" if nxdomain or answer is None else f" A {answer}"
        info = f"Standard query response 0x{dns_id:04x} {status}{qtype} {name}{tail}"
        src, dst, s, d, length = DNS_POD, CLIENT, 53, sport, 202
    else:
        info = f"Standard query 0x{dns_id:04x} {qtype} {name}"
        src, dst, s, d, length = CLIENT, KUBE_DNS, sport, 53, 109
    return PacketSummary(
        ts=0.0,
        node="",
        interface="",
        number=0,
        src=src,
        dst=dst,
        protocol="DNS",
        length=length,
        info=info,
        sport=s,
        dport=d,
        ip_id=ip_id,
        dns_query=name,
        dns_answer=answer if response else None,
        dns_id=dns_id,
        dns_qtype=qtype,
        dns_rcode=(3 if nxdomain else 0) if response else None,
    )


# the client's search list (wrk-1.svc.cluster.local svc.cluster.local cluster.local), ndots:5
WALK = (f"{SERVICE_NAME}.wrk-1.svc.cluster.local", f"{SERVICE_NAME}.svc.cluster.local")


def article_connection(cap: Capture, t0: float, cport: int = 38430, isn: int = 1_000_000) -> None:
    """The article's lxc capture: the DNS search walk (A and AAAA per name), then the handshake."""
    ids = iter((0x262F, 0xF132, 0x76E7, 0x67E4))
    t = t0
    for name in WALK:
        final = name == WALK[-1]
        for qtype in ("A", "AAAA"):
            dns_id = next(ids)
            cap.send(t, dns(cport + 1000, dns_id, qtype, name))
            answer = CLUSTER_IP if final and qtype == "A" else None
            reply = dns(cport + 1000, dns_id, qtype, name, answer=answer, nxdomain=not final, response=True)
            cap.send(t + 0.001, reply)
            t += 0.0002
        t += 0.0015
    t += 0.09  # the article: 90 ms from the answer to the SYN
    cap.send(t, tcp(cport, SERVICE_PORT, "SYN", isn, 0, 0))
    cap.send(t + 0.0006, tcp(SERVICE_PORT, cport, "SYN,ACK", 7_000_000, isn + 1, 0, reply=True))
    cap.send(t + 0.0012, tcp(cport, SERVICE_PORT, "ACK", isn + 1, 7_000_001, 4242, length=66))
