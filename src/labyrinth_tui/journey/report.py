"""JourneyReport: one run of the article's traffic (streams, stitched journeys, evidence); hop evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labyrinth_tui.journey.hops import ChangeKind, Hop, Journey
from labyrinth_tui.journey.phases import DnsPhase, Handshake
from labyrinth_tui.journey.service_map import ServiceMap
from labyrinth_tui.journey.stitch import StitchResult, journey_jsonable
from labyrinth_tui.model.evidence import CounterMove, EvidenceDiff


@dataclass(frozen=True, slots=True)
class PodSeen:
    """A pod of the journey as its node showed it: netns, host veth, and whether that veth exists there."""

    namespace: str
    name: str
    node: str
    ip: str
    netns: str
    host_veth: str
    veth_present: bool
    role: str  # "client" or "server"


@dataclass(frozen=True, slots=True)
class StreamReady:
    """One hop's capture: was it proven capturing before the traffic, and how many packets it gave."""

    node: str
    interface: str
    state: str  # a StreamState value: "capturing", "failed", …
    reason: str = ""
    packets: int = 0


@dataclass(frozen=True, slots=True)
class JourneyReport:
    """What `labyrinth journey` prints and the journey screen shows."""

    cluster: str
    service: str  # the name the client asked for: node-wrk-2-ubuntu24.wrk-2
    service_ip: str  # its ClusterIP
    service_port: int
    client: PodSeen
    server: PodSeen
    streams: tuple[StreamReady, ...]
    stitched: StitchResult
    evidence: tuple[EvidenceDiff, ...]
    received: str  # what the server pod read from the connection
    problems: tuple[str, ...] = ()
    service_maps: tuple[ServiceMap, ...] = ()  # where Cilium runs: what its agents map the service to

    @property
    def handshake(self) -> Handshake | None:
        """The client's connection to the service (the first, if several)."""
        found = [
            h
            for h in self.stitched.handshakes(self.client.ip)
            if h.server == f"{self.service_ip}:{self.service_port}"
        ]
        return found[0] if found else None

    @property
    def dns(self) -> DnsPhase:
        return self.stitched.dns_phase(self.service, self.client.ip)

    def evidence_on(self, node: str) -> EvidenceDiff | None:
        return next((e for e in self.evidence if e.node == node), None)

    def hop_evidence(self, journey: Journey, hop: Hop) -> tuple[str, ...]:
        """What the node showed about this hop: who translated a DNAT that happened before it on the same
        node (kube-proxy's rules that counted it, or the eBPF program that did, with kube-proxy's chain at
        0 beside it), and the BPF programs on its interface with what they counted."""
        ev = self.evidence_on(hop.node)
        if ev is None:
            return ()
        lines: list[str] = []
        # iptables NAT counts a connection's first packet only (conntrack NATs the rest): the SYN, a query
        first = journey.flow.l4 != "TCP" or journey.tcp_flags == {"SYN"}
        dnat = next((c for c in hop.changes if c.kind is ChangeKind.DNAT), None)
        if first and dnat is not None:
            service = _service_of(self, journey)
            if service is not None:
                lines += _dnat_evidence(ev, service, dnat.before, dnat.after)
        programs = ev.programs_on(hop.interface)
        lines += [p.text for p in programs]
        if not programs:
            lines += [
                f"bpf {a.hook}/{a.direction} {a.program or '?'} (prog {a.prog_id})"
                for a in ev.on_interface(hop.interface)
            ]
        return tuple(lines)

    def jsonable(self) -> dict[str, Any]:
        hs = self.handshake
        dns = self.dns
        return {
            "cluster": self.cluster,
            "service": self.service,
            "service_ip": self.service_ip,
            "client": _pod_json(self.client),
            "server": _pod_json(self.server),
            "streams": [
                {"node": s.node, "interface": s.interface, "state": s.state, "reason": s.reason}
                | {"packets": s.packets}
                for s in self.streams
            ],
            "clock_offsets": {
                node: {"offset": c.offset, "method": str(c.method)}
                for node, c in self.stitched.clock_offsets.items()
            },
            "reference_node": self.stitched.reference_node,
            "dns": {
                "walk": list(dns.walk),
                "exchanges": [
                    {"name": e.name, "qtype": e.qtype, "status": e.status, "answer": e.answer}
                    for e in dns.exchanges
                ],
                "answer": dns.answer.answer if dns.answer else None,
            },
            "handshake": None
            if hs is None
            else {
                "client": hs.client,
                "server": hs.server,
                "endpoint": hs.endpoint,
                "complete": hs.complete,
                "stalled": hs.stalled,
                "syn": _j(hs.syn),
                "syn_ack": _j(hs.syn_ack),
                "ack": _j(hs.ack),
            },
            "evidence": [
                {
                    "node": e.node,
                    "moved": [
                        {
                            "chain": m.rule.chain,
                            "target": m.rule.target,
                            "comment": m.rule.comment,
                            "packets": m.packets,
                            "bytes": m.bytes,
                        }
                        for m in e.moved
                    ],
                    "bpf": [
                        {
                            "interface": a.interface,
                            "hook": a.hook,
                            "direction": a.direction,
                            "prog": a.program,
                        }
                        for a in e.bpf
                    ],
                    "programs": [
                        {
                            "interface": p.link.ifname,
                            "direction": p.link.direction,
                            "prog": p.link.prog_name,
                            "prog_id": p.link.prog_id,
                            "seen": p.seen,
                            "translated": p.translated,
                        }
                        for p in e.programs
                    ],
                    "problems": list(e.problems),
                }
                for e in self.evidence
            ],
            "received": self.received,
            "journeys": len(self.stitched.journeys),
            "vanished": [journey_jsonable(j) for j in self.stitched.vanished()],
            "problems": list(self.problems),
            "service_maps": [
                {"node": m.node, "agent": m.agent, "command": m.command, "lines": list(m.lines)}
                | {"problem": m.problem}
                for m in self.service_maps
            ],
        }


def _j(journey: Journey | None) -> dict[str, Any] | None:
    return None if journey is None else journey_jsonable(journey)


def _pod_json(p: PodSeen) -> dict[str, Any]:
    return {
        "namespace": p.namespace,
        "name": p.name,
        "node": p.node,
        "ip": p.ip,
        "netns": p.netns,
        "host_veth": p.host_veth,
        "veth_present": p.veth_present,
    }


def _dnat_evidence(
    ev: EvidenceDiff, service: tuple[str, str, str | None], before: str, after: str
) -> list[str]:
    """kube-proxy's rules that counted the DNAT; or, where BPF did it, the program and kube-proxy's chain
    shown at 0 packets — bypassed (the article's punchline)."""
    moved = ev.for_service(*service)
    translators = [p for p in ev.programs if p.translated and p.link.prog_name == "cil_from_container"]
    lines = [m.text for m in moved]
    for p in translators:
        lines.append(
            f"eBPF {p.link.prog_name} on {ev.node}/{p.link.ifname} translated {before} → {after}"
            f" (+{p.translated} this run)"
        )
    if translators and not moved:
        chain = _kube_chain(ev.service_rules(*service))
        if chain:
            lines.append(f"kube-proxy {chain}: 0 packets — bypassed")
    return lines


def _kube_chain(rules: tuple[CounterMove, ...]) -> str:
    """'KUBE-SERVICES → KUBE-SVC-IWPXKGE4TAJJE4GD → KUBE-SEP-… (DNAT)': the service's path through the rules,
    in the order a packet would take it (iptables-save lists the chains alphabetically)."""
    rank = {"KUBE-SERVICES": 0, "KUBE-SVC": 1, "KUBE-SEP": 2}
    chains = sorted(
        {m.rule.chain for m in rules if m.rule.chain.startswith(tuple(rank))},
        key=lambda c: (rank.get(c, rank.get(c.rsplit("-", 1)[0], 3)), c),
    )
    dnat = " (DNAT)" if any(m.rule.target == "DNAT" for m in rules) else ""
    return " → ".join(chains) + dnat if chains else ""


def _service_of(report: JourneyReport, journey: Journey) -> tuple[str, str, str | None] | None:
    """(namespace, name, port name) of the service a DNATed packet was addressed to, from the name asked."""
    if journey.flow.dst != report.service_ip:
        return ("kube-system", "kube-dns", "dns") if journey.flow.dport == 53 else None
    name, _, namespace = report.service.partition(".")
    port = f"{journey.flow.l4.lower()}-{report.service_port}"
    return (namespace, name, port)
