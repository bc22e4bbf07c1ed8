"""Stitching 1M observations from the article's 6 streams (node-1 lxc/cilium_vxlan/ens4, node-2 ens4/
cilium_vxlan/lxc) into journeys with every hop built: goal ≤ 1.0 × the anchor measured in the same run, a
naive `sorted()` by time + dict grouping by 5-tuple of the same observations that then builds the same
Hop objects the obvious way (each field read from its packet, each address formatted per hop), since ours
is timed with every journey's hops built too. Sort+group alone is printed beside: it builds no hop, and
making a million Hop objects already costs about what it does, so ≤ 1.0 × that is out of reach for any
stitcher that builds them. Prints time, memory and the ratios."""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from operator import attrgetter
from typing import Any

from lib.goals import Verdict, load_line

from labyrinth_tui.journey.clock import ClockOffset
from labyrinth_tui.journey.hops import Hop, hops_of
from labyrinth_tui.journey.nat import endpoint_text
from labyrinth_tui.journey.roles import Direction, InterfaceRole, Role, infer_role
from labyrinth_tui.journey.stitch import StitchResult, stitch
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.topology import Service, ServicePort

GOAL_RATIO = 1.0  # ours (stitch + every hop) ÷ the sort+group anchor
N1, N2 = "node-1", "node-2"
N1_IP, N2_IP = "10.168.0.4", "10.168.0.5"
CLIENT_VETH, SERVER_VETH = "lxc7dc050ebabd6", "lxc3afb1f126f2c"
CLIENT, SERVER, DNS_POD = "10.0.1.15", "10.0.2.215", "10.0.2.17"
CLUSTER_IP, KUBE_DNS = "10.105.134.33", "10.96.0.10"
PATH = (
    (N1, CLIENT_VETH),
    (N1, "cilium_vxlan"),
    (N1, "ens4"),
    (N2, "ens4"),
    (N2, "cilium_vxlan"),
    (N2, SERVER_VETH),
)
HOP_DELAYS = (0.0, 30e-6, 20e-6, 150e-6, 25e-6, 15e-6)
SKEW = {N1: 0.0, N2: 0.5}  # node-2's clock is 500 ms ahead
VNI = 6174
SERVICES = (
    Service(
        "wrk-2", "node-wrk-2-ubuntu24", CLUSTER_IP, (ServicePort("tcp-9999", "TCP", 9999, 9999),), (SERVER,)
    ),
    Service("kube-system", "kube-dns", KUBE_DNS, (ServicePort("dns", "UDP", 53, 53),), (DNS_POD,)),
)
ROLES = {
    (N1, CLIENT_VETH): InterfaceRole(Role.HOST_VETH, pod_ip=CLIENT),
    (N1, "cilium_vxlan"): InterfaceRole(Role.OVERLAY),
    (N1, "ens4"): InterfaceRole(Role.UNDERLAY, node_ip=N1_IP),
    (N2, "ens4"): InterfaceRole(Role.UNDERLAY, node_ip=N2_IP),
    (N2, "cilium_vxlan"): InterfaceRole(Role.OVERLAY),
    (N2, SERVER_VETH): InterfaceRole(Role.HOST_VETH, pod_ip=SERVER),
}


class _Streams:
    """Per-stream lists of what tshark would have printed, built packet by packet."""

    def __init__(self, rng: random.Random, loss: float) -> None:
        self.rng = rng
        self.loss = loss
        self.per_stream: dict[tuple[str, str], list[PacketSummary]] = {s: [] for s in PATH}
        self.outer_port = 40000
        self.emitted = 0

    def emit(self, t0: float, p: dict[str, Any], reply: bool) -> None:
        path = PATH[::-1] if reply else PATH
        hops = 6
        if self.rng.random() < self.loss:
            hops = self.rng.randint(1, 5)  # vanishes somewhere on the way
        self.emitted += hops
        self.outer_port = 40000 + (self.outer_port + 1) % 20000
        t = t0
        src, dst = p["src"], p["dst"]
        front = {SERVER: CLUSTER_IP, DNS_POD: KUBE_DNS}
        back = {CLUSTER_IP: SERVER, KUBE_DNS: DNS_POD}
        for i in range(hops):
            node, iface = path[i]
            t += HOP_DELAYS[i] * (1.0 + self.rng.random())
            s, d = src, dst
            if not reply and i > 0:
                d = back.get(dst, dst)
            if reply and i == 5:
                s = front.get(src, src)
            encap = iface == "ens4"
            stream = self.per_stream[(node, iface)]
            stream.append(
                PacketSummary(
                    ts=t + SKEW[node],
                    node=node,
                    interface=iface,
                    number=len(stream) + 1,
                    src=s,
                    dst=d,
                    protocol=p["protocol"],
                    length=p["length"] + (50 if encap else 0),
                    info=p["info"],
                    sport=p["sport"],
                    dport=p["dport"],
                    tcp_flags=p.get("flags"),
                    seq=p.get("seq"),
                    ack=p.get("ack"),
                    ip_id=p["ip_id"],
                    dns_query=p.get("query"),
                    dns_id=p.get("dns_id"),
                    payload_hash=p.get("payload"),
                    outer_src=(N2_IP if reply else N1_IP) if encap else None,
                    outer_dst=(N1_IP if reply else N2_IP) if encap else None,
                    outer_sport=self.outer_port if encap else None,
                    outer_dport=8472 if encap else None,
                    vni=VNI if encap else None,
                )
            )


def generate(n_observations: int, seed: int = 9, loss: float = 0.01) -> list[PacketSummary]:
    """Connections to the service by name: a DNS lookup now and then, handshake, data both ways, FIN."""
    rng = random.Random(seed)
    streams = _Streams(rng, loss)
    t = 0.0
    conn = 0
    while streams.emitted < n_observations:
        conn += 1
        cport = 32768 + conn % 28000
        cid, sid = rng.randrange(1, 60000), rng.randrange(1, 60000)
        if conn % 10 == 1:
            for name_id, name in enumerate(
                ("svc.wrk-2.wrk-1.svc.cluster.local", "svc.wrk-2.svc.cluster.local")
            ):
                dns_id = rng.randrange(65536)
                q = {"src": CLIENT, "dst": KUBE_DNS, "sport": cport, "dport": 53, "protocol": "DNS"}
                streams.emit(
                    t,
                    {**q, "length": 109, "info": "query", "ip_id": 0, "query": name, "dns_id": dns_id},
                    False,
                )
                r = {"src": DNS_POD, "dst": CLIENT, "sport": 53, "dport": cport, "protocol": "DNS"}
                info = "response" if name_id else "response No such name"
                streams.emit(
                    t + 0.001,
                    {**r, "length": 202, "info": info, "ip_id": 0, "query": name, "dns_id": dns_id},
                    True,
                )
                t += 0.002
        cseq, sseq = rng.randrange(1 << 32), rng.randrange(1 << 32)
        c = {"src": CLIENT, "dst": CLUSTER_IP, "sport": cport, "dport": 9999, "protocol": "TCP", "info": "c"}
        s = {"src": SERVER, "dst": CLIENT, "sport": 9999, "dport": cport, "protocol": "TCP", "info": "s"}
        packets: list[tuple[dict[str, Any], bool]] = [
            ({**c, "flags": "SYN", "seq": cseq, "ack": 0, "ip_id": 0, "length": 74}, False),
            ({**s, "flags": "SYN,ACK", "seq": sseq, "ack": cseq + 1, "ip_id": 0, "length": 74}, True),
        ]
        cseq, sseq = cseq + 1, sseq + 1
        for _ in range(rng.randint(5, 30)):
            size = rng.randint(1, 1400)
            packets.append(
                (
                    {
                        **c,
                        "flags": "PSH,ACK",
                        "seq": cseq,
                        "ack": sseq,
                        "ip_id": cid,
                        "length": 66 + size,
                        "payload": rng.getrandbits(32),
                    },
                    False,
                )
            )
            cid += 1
            cseq += size
            packets.append(
                ({**s, "flags": "ACK", "seq": sseq, "ack": cseq, "ip_id": sid, "length": 66}, True)
            )
            sid += 1
        packets.append(
            ({**c, "flags": "FIN,ACK", "seq": cseq, "ack": sseq, "ip_id": cid, "length": 66}, False)
        )
        for p, reply in packets:
            streams.emit(t, p, reply)
            t += rng.expovariate(1 / 300e-6)
    # streams read one after another, as six capture files would be (the last few packets cut short)
    return [p for stream in streams.per_stream.values() for p in stream][:n_observations]


def naive_baseline(observations: list[PacketSummary]) -> dict[tuple[Any, ...], list[PacketSummary]]:
    """Sort by time, group by 5-tuple — what any tool does before it knows about NAT or VXLAN."""
    groups: dict[tuple[Any, ...], list[PacketSummary]] = {}
    five = attrgetter("src", "sport", "dst", "dport", "protocol")
    for p in sorted(observations, key=attrgetter("ts")):
        key = five(p)
        found = groups.get(key)
        if found is None:
            groups[key] = [p]
        else:
            found.append(p)
    return groups


def naive_hops(groups: dict[tuple[Any, ...], list[PacketSummary]]) -> int:
    """The anchor's hops: one Hop per observation, every field read from its packet, as a first try would."""
    built = 0
    for group in groups.values():
        hops: list[Hop] = []
        prev = 0.0
        for i, p in enumerate(group):
            role = ROLES.get((p.node, p.interface)) or infer_role(p.interface)
            vni = p.vni
            outer = None
            if vni is not None:
                outer = (
                    f"{endpoint_text(p.outer_src or '?', p.outer_sport)} → "
                    f"{endpoint_text(p.outer_dst or '?', p.outer_dport)}"
                )
            ts = p.ts
            hops.append(
                Hop(
                    i,
                    p.node,
                    p.interface,
                    role.role,
                    Direction.UNKNOWN,
                    ts,
                    ts,
                    None if i == 0 else ts - prev,
                    endpoint_text(p.src, p.sport),
                    endpoint_text(p.dst, p.dport),
                    (),
                    vni,
                    outer,
                    False,
                    p,
                )
            )
            prev = ts
        built += len(hops)
    return built


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of fn, with the cyclic GC off for both contenders (stitch() turns it off itself)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def _describe(result: StitchResult) -> tuple[float, int, int, int, ClockOffset]:
    """Time to build every hop (the TUI builds a few journeys' at a time), counts, node-2's offset."""
    t_hops, n_hops = _timed(lambda: sum(map(len, hops_of(result.journeys))))
    vanished = sum([1 for j in result.journeys if j.vanished])
    return t_hops, n_hops, len(result.journeys), vanished, result.clock_offsets[N2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1_000_000, help="observations (default 1M)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    t_gen, observations = _timed(lambda: generate(args.n))
    print(f"generated {len(observations):,} observations on 6 streams in {t_gen:.1f} s")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    ours: list[float] = []
    anchor: list[float] = []
    grouped: list[float] = []
    result: StitchResult | None = None
    for _ in range(args.rounds):
        t, groups = _timed(lambda: naive_baseline(observations))
        t_naive_hops, _built = _timed(partial(naive_hops, groups))
        groups = {}
        grouped.append(t)
        anchor.append(t + t_naive_hops)
        result = None  # one result alive at a time, as in the app
        t, result = _timed(lambda: stitch(observations, SERVICES, ROLES))
        t_hops, n_hops, journeys, vanished, off = _describe(result)
        ours.append(t + t_hops)
    assert result is not None
    best, best_anchor, best_grouped = min(ours), min(anchor), min(grouped)
    result = None
    gc.collect()
    tracemalloc.start()
    traced = stitch(observations, SERVICES, ROLES)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"journeys: {journeys:,} ({vanished:,} vanished on the way); "
        f"node-2 clock offset {off.offset * 1000:.3f} ms ± {(off.uncertainty or 0) * 1e6:.0f} µs "
        f"({off.method}; true: 500 ms)"
    )
    print(
        f"anchor  naive sorted()+5-tuple dict, every hop built: {best_anchor:.3f} s (best of {args.rounds})"
    )
    print(f"        of it sorted()+5-tuple dict alone: {best_grouped:.3f} s (builds no hop)")
    print(f"ours    stitch() + every hop built:  {best:.3f} s = {best / best_grouped:.2f} × sort+group alone")
    print(f"        (best of {args.rounds}; the last round's hops")
    print(f"        took {t_hops:.3f} s for {n_hops:,} hops)")
    print(
        f"memory  stitch() tracemalloc peak {peak / 1e6:.0f} MB, {kept / 1e6:.0f} MB kept for "
        f"{len(traced.journeys):,} journeys; "
        f"process max RSS {rss_before:.0f} MB with the observations, {rss_after:.0f} MB at the end "
        "(all hops built once, tracemalloc's own bookkeeping)"
    )
    print(load_line())
    verdict = Verdict("bench/journey_stitch.py")
    ratio = best / best_anchor
    verdict.goal(
        "1M observations, every hop built",
        f"{best:.3f} s = {ratio:.2f} ×",
        f"{best_anchor:.3f} s",
        f"≤ {GOAL_RATIO:g} × anchor",
        ratio <= GOAL_RATIO,
    )
    return verdict.status()


if __name__ == "__main__":
    sys.exit(main())
