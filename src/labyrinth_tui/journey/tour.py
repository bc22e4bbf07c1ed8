"""The article as a checklist: each TourStep checks one observation of a JourneyReport, says what was seen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from labyrinth_tui.journey.hops import Hop, Journey
from labyrinth_tui.journey.report import JourneyReport

VXLAN_PORT = 8472


@dataclass(frozen=True, slots=True)
class TourStep:
    title: str  # the article's claim
    passed: bool
    seen: str  # what was actually observed (also when it failed)

    @property
    def mark(self) -> str:
        return "✓" if self.passed else "✗"


def _hop(journey: Journey | None, node: str, interface: str) -> Hop | None:
    if journey is None:
        return None
    return next((h for h in journey.hops if (h.node, h.interface) == (node, interface)), None)


def _pods(r: JourneyReport) -> TourStep:
    seen = "; ".join(
        f"{p.namespace}/{p.name} {p.ip} on {p.node}, netns {p.netns}, {p.host_veth}"
        + ("" if p.veth_present else " (veth missing)")
        for p in (r.client, r.server)
    )
    ok = all(p.veth_present and p.netns and p.host_veth for p in (r.client, r.server))
    return TourStep("the pods, their network namespaces and host veths", ok, seen)


def _dns(r: JourneyReport) -> TourStep:
    on_lxc = (r.client.node, r.client.host_veth)
    phase = r.dns
    exchanges = [e for e in phase.exchanges if on_lxc in e.query.streams]
    walk = list(dict.fromkeys(e.name for e in exchanges if e.name))
    answer = phase.answer
    statuses = ", ".join(f"{e.name} {e.qtype} {e.status}" for e in exchanges) or "no DNS query seen"
    ok = (
        len(walk) >= 2
        and answer is not None
        and answer.answer == r.service_ip
        and on_lxc in answer.query.streams
    )
    if answer is not None and answer.response is not None:
        ok = ok and on_lxc in answer.response.streams
    seen = f"walk {' → '.join(walk) or '—'}; {statuses}; answer {answer.answer if answer else 'none'}"
    return TourStep(f"the DNS search walk on the client's {r.client.host_veth}", ok, seen)


def _syn_hop_step(
    r: JourneyReport, title: str, node: str, interface: str, check: Callable[[Hop], bool]
) -> TourStep:
    hs = r.handshake
    hop = _hop(hs.syn if hs else None, node, interface)
    if hop is None:
        return TourStep(title, False, f"the SYN was not seen on {node}/{interface}")
    outer = f" outer {hop.outer} VNI {hop.vni}" if hop.outer else ""
    return TourStep(title, check(hop), f"SYN {hop.src} → {hop.dst} on {node}/{interface}{outer}")


def _cluster_ip(r: JourneyReport) -> TourStep:
    want = f"{r.service_ip}:{r.service_port}"
    return _syn_hop_step(
        r,
        f"the ClusterIP {want} on the client's lxc",
        r.client.node,
        r.client.host_veth,
        lambda h: h.dst == want,
    )


def _pod_ip_on_vxlan(r: JourneyReport) -> TourStep:
    want = f"{r.server.ip}:{r.service_port}"
    return _syn_hop_step(
        r, f"the pod IP {want} on cilium_vxlan", r.client.node, "cilium_vxlan", lambda h: h.dst == want
    )


def _underlay(r: JourneyReport) -> TourStep:
    hs = r.handshake
    wants = []
    seen = []
    ok = hs is not None and hs.syn is not None and hs.syn_ack is not None
    if hs is not None:
        for journey, label in ((hs.syn, "SYN"), (hs.syn_ack, "SYN-ACK")):
            for node in (r.client.node, r.server.node):
                hop = _hop(journey, node, "ens4")
                wants.append((label, node))
                if hop is None or hop.outer is None:
                    ok = False
                    seen.append(f"{label} not seen on {node}/ens4")
                    continue
                src, _, dst = hop.outer.partition(" → ")
                ends = {src.rsplit(":", 1)[0], dst.rsplit(":", 1)[0]}
                ok = ok and dst.endswith(f":{VXLAN_PORT}") and ends == _node_ips(r)
                seen.append(f"{label} on {node}/ens4: UDP {hop.outer} VNI {hop.vni}")
    ips = " and ".join(sorted(_node_ips(r))) or "the nodes"
    return TourStep(
        f"UDP {VXLAN_PORT} between {ips} on both ens4", ok, "; ".join(seen) or "no handshake seen"
    )


def _node_ips(r: JourneyReport) -> set[str]:
    roles = r.stitched.context.paths.roles
    return {
        role.node_ip
        for (node, iface), role in roles.items()
        if iface == "ens4" and role.node_ip and node in (r.client.node, r.server.node)
    }


def _arrival(r: JourneyReport) -> TourStep:
    want = f"{r.server.ip}:{r.service_port}"
    step = _syn_hop_step(
        r,
        f"arrival on the server pod's {r.server.host_veth}",
        r.server.node,
        r.server.host_veth,
        lambda h: h.dst == want,
    )
    if r.received:
        return TourStep(step.title, step.passed, f"{step.seen}; the server read {r.received.strip()!r}")
    return step


def _counters(r: JourneyReport) -> TourStep:
    ev = r.evidence_on(r.client.node)
    if ev is not None and ev.ebpf:
        return _bypassed(r)
    name, _, namespace = r.service.partition(".")
    title = f"kube-proxy's iptables counters on {r.client.node} moved"
    if ev is None:
        return TourStep(title, False, f"no evidence from {r.client.node}")
    moved = ev.for_service(namespace, name, f"tcp-{r.service_port}")
    dnat = [m for m in moved if m.rule.target == "DNAT"]
    seen = "; ".join(m.text for m in moved) or "no rule of the service counted anything"
    if ev.problems:
        seen += f" ({'; '.join(ev.problems)})"
    return TourStep(title, bool(dnat), seen)


# the devices the article's `bpftool link` lists a program on, besides every lxc… (direction per device)
CILIUM_DEVICES = (
    ("cilium_vxlan", "ingress"),
    ("cilium_vxlan", "egress"),
    ("cilium_host", "ingress"),
    ("cilium_host", "egress"),
    ("cilium_net", "ingress"),
    ("ens4", "ingress"),
    ("lxc_health", "ingress"),
)


def _bypassed(r: JourneyReport) -> TourStep:
    """The eBPF datapath: no kube-proxy rule of the service counted the traffic on either node, a program
    translated it on the client's lxc, and every Cilium device of both nodes carries a program."""
    title = "kube-proxy's counters stay at 0; tcx programs on every Cilium device"
    name, _, namespace = r.service.partition(".")
    ok = True
    seen: list[str] = []
    for pod in (r.client, r.server):
        ev = r.evidence_on(pod.node)
        if ev is None:
            return TourStep(title, False, f"no evidence from {pod.node}")
        moved = ev.for_service(namespace, name, f"tcp-{r.service_port}")
        rules = ev.service_rules(namespace, name, f"tcp-{r.service_port}")
        ok = ok and not moved and bool(rules)
        counted = sum(m.packets for m in moved)
        seen.append(f"{pod.node}: {len(rules)} kube-proxy rules of the service, +{counted} packets")
        wanted = [*CILIUM_DEVICES, (pod.host_veth, "ingress")]
        have = {(p.link.ifname, p.link.direction) for p in ev.programs}
        missing = [f"{dev}/{way}" for dev, way in wanted if (dev, way) not in have]
        kinds = sorted({p.link.kind for p in ev.programs})
        ok = ok and not missing
        seen.append(
            f"{len(ev.programs)} {'/'.join(kinds) or 'BPF'} programs"
            + (f", none on {', '.join(missing)}" if missing else " on every Cilium device")
        )
    client = r.evidence_on(r.client.node)
    translated = [p for p in (client.programs_on(r.client.host_veth) if client else ()) if p.translated]
    ok = ok and bool(translated)
    seen.append(
        "; ".join(
            f"{p.link.prog_name} on {r.client.host_veth} translated +{p.translated}" for p in translated
        )
        or f"nothing translated on {r.client.host_veth}"
    )
    return TourStep(title, ok, "; ".join(seen))


STEPS: tuple[Callable[[JourneyReport], TourStep], ...] = (
    _pods,
    _dns,
    _cluster_ip,
    _pod_ip_on_vxlan,
    _underlay,
    _arrival,
    _counters,
)


def tour_steps(report: JourneyReport) -> tuple[TourStep, ...]:
    """Every step of the article, in its order, checked against what this run captured."""
    return tuple(step(report) for step in STEPS)
