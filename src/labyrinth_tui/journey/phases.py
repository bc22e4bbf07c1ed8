"""The phases of the article's connection as journeys: the DNS search walk, then SYN / SYN-ACK / ACK."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from labyrinth_tui.journey.hops import Journey
from labyrinth_tui.journey.nat import Flow, endpoint_text
from labyrinth_tui.model.packets import PacketSummary

DNS_PORT = 53
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_INFO_RCODES = {"No such name": 3, "Server failure": 2, "Refused": 5, "Format error": 1, "Not implemented": 4}
# tshark's one-line DNS info: "Standard query [response] 0x262f [No such name] AAAA name [SOA …| A 1.2.3.4]"
_INFO_ID = re.compile(r"\b0x([0-9a-fA-F]{4})\b")
_INFO_QTYPE = re.compile(r"\b0x[0-9a-fA-F]{4} (?:(?:No such name|Server failure|Refused) )?(\w+) ")
_INFO_A = re.compile(r" A (\d{1,3}(?:\.\d{1,3}){3})\b")


def is_dns(p: PacketSummary) -> bool:
    return p.dns_query is not None or p.dns_id is not None or p.protocol.upper() in ("DNS", "MDNS")


def dns_id_of(p: PacketSummary) -> int | None:
    """The DNS transaction id: the captured field, or read from tshark's info line."""
    if p.dns_id is not None:
        return p.dns_id
    found = _INFO_ID.search(p.info)
    return int(found.group(1), 16) if found else None


def dns_is_response(p: PacketSummary) -> bool:
    return p.sport == DNS_PORT or p.dns_rcode is not None or "response" in p.info


def dns_qtype_of(p: PacketSummary) -> str | None:
    if p.dns_qtype is not None:
        return p.dns_qtype
    found = _INFO_QTYPE.search(p.info)
    return found.group(1) if found else None


def dns_rcode_of(p: PacketSummary) -> int | None:
    if p.dns_rcode is not None:
        return p.dns_rcode
    if not dns_is_response(p):
        return None
    return next((code for text, code in _INFO_RCODES.items() if text in p.info), 0)


def dns_answer_of(p: PacketSummary) -> str | None:
    if p.dns_answer is not None:
        return p.dns_answer
    found = _INFO_A.search(p.info)
    return found.group(1) if found else None


@dataclass(frozen=True, slots=True)
class DnsExchange:
    """One query of the search walk and its response, each a journey across the hops."""

    query: Journey
    response: Journey | None
    name: str | None
    qtype: str | None
    rcode: int | None  # None: no response seen
    answer: str | None  # the A/AAAA address, when it resolved
    attempts: int = 1  # the query was sent this many times

    @property
    def status(self) -> str:
        if self.rcode is None:
            return "no response"
        return RCODE_NAMES.get(self.rcode, f"rcode {self.rcode}")


@dataclass(frozen=True, slots=True)
class DnsPhase:
    exchanges: tuple[DnsExchange, ...]

    @property
    def answer(self) -> DnsExchange | None:
        """The exchange that resolved the name (the end of the search walk)."""
        return next((e for e in self.exchanges if e.rcode == 0 and e.answer is not None), None)

    @property
    def walk(self) -> tuple[str, ...]:
        """The names tried, in order, each once (A and AAAA are asked for each)."""
        names: dict[str, None] = {}
        for e in self.exchanges:
            if e.name is not None:
                names.setdefault(e.name, None)
        return tuple(names)


def _matches(query_name: str | None, name: str | None) -> bool:
    if name is None:
        return True
    if query_name is None:
        return False
    q, n = query_name.rstrip(".").lower(), name.rstrip(".").lower()
    return q == n or q.startswith(n + ".")


def dns_phase(journeys: Iterable[Journey], name: str | None = None, client: str | None = None) -> DnsPhase:
    """The DNS queries (for `name` and its search-list expansions; from `client` ip) with their responses."""
    queries: list[Journey] = []
    attempts: dict[tuple[Flow, int | None], int] = {}
    responses: dict[tuple[Flow, int | None], Journey] = {}
    for j in sorted(journeys, key=lambda j: (j.start, j.transmission)):
        p = j.first
        if not is_dns(p):
            continue
        key = (j.flow, dns_id_of(p))
        if dns_is_response(p):
            responses.setdefault((j.flow.reversed(), key[1]), j)
            continue
        attempts[key] = attempts.get(key, 0) + 1
        if j.transmission == 0 and _matches(p.dns_query, name) and (client is None or p.src == client):
            queries.append(j)
    exchanges: list[DnsExchange] = []
    for q in queries:
        key = (q.flow, dns_id_of(q.first))
        r = responses.get(key)
        exchanges.append(
            DnsExchange(
                query=q,
                response=r,
                name=q.first.dns_query,
                qtype=dns_qtype_of(q.first),
                rcode=None if r is None else dns_rcode_of(r.first),
                answer=None if r is None else dns_answer_of(r.first),
                attempts=attempts.get(key, 1),
            )
        )
    return DnsPhase(tuple(exchanges))


@dataclass(frozen=True, slots=True)
class Handshake:
    """One TCP connection's three-way handshake, each packet a journey across both nodes."""

    client: str  # ip:port of the client pod
    server: str  # as the client addressed it (the ClusterIP:port)
    endpoint: str | None  # the pod ip:port the SYN reached after DNAT, when seen
    syn: Journey | None
    syn_ack: Journey | None
    ack: Journey | None
    syn_sent: int = 1  # 1 + SYN retransmissions

    @property
    def complete(self) -> bool:
        return self.syn is not None and self.syn_ack is not None and self.ack is not None

    @property
    def journeys(self) -> tuple[Journey, ...]:
        return tuple(j for j in (self.syn, self.syn_ack, self.ack) if j is not None)

    @property
    def stalled(self) -> str | None:
        """Where an incomplete handshake stopped, for a person: the last packet that went out and the hop
        it was last seen on (and the one it never reached). None when complete or no SYN was seen."""
        if self.complete or self.syn is None:
            return None
        last, missing = (self.syn, "SYN-ACK") if self.syn_ack is None else (self.syn_ack, "ACK")
        label = "SYN" if last is self.syn else "SYN-ACK"
        hop = last.hops[-1]
        times = f" (sent {self.syn_sent}×)" if last is self.syn and self.syn_sent > 1 else ""
        where = f"{hop.node}/{hop.interface} ({hop.direction}, {hop.src} → {hop.dst})"
        text = f"no {missing}: the {label}{times} was last seen on {where}"
        if last.expected_next is not None:
            node, interface = last.expected_next
            text += f", never on {node}/{interface}"
        return text


def _next_seq(seq: int | None) -> int | None:
    return None if seq is None else (seq + 1) % (1 << 32)


def handshakes(journeys: Iterable[Journey], client: str | None = None) -> list[Handshake]:
    """Every handshake whose SYN was seen (optionally only from `client` ip), in time order."""
    syns: dict[Flow, list[Journey]] = {}
    syn_acks: dict[Flow, list[Journey]] = {}
    acks: dict[Flow, list[Journey]] = {}
    for j in sorted(journeys, key=lambda j: (j.start, j.transmission)):
        if j.flow.l4 != "TCP":
            continue
        flags = j.tcp_flags
        if flags == {"SYN"}:
            syns.setdefault(j.flow, []).append(j)
        elif flags == {"SYN", "ACK"}:
            syn_acks.setdefault(j.flow, []).append(j)
        elif flags == {"ACK"}:
            acks.setdefault(j.flow, []).append(j)
    result: list[Handshake] = []
    for flow, sent in syns.items():
        if client is not None and flow.src != client:
            continue
        answers = syn_acks.get(flow.reversed(), [])
        syn_ack = next((s for s in answers if s.first.ack in (None, _next_seq(sent[0].first.seq))), None)
        answered = [s for s in sent if syn_ack is None or s.start <= syn_ack.start]
        syn = answered[-1] if syn_ack is not None and answered else sent[0]
        ack = None
        if syn_ack is not None:
            ack = next(
                (
                    a
                    for a in acks.get(flow, [])
                    if a.start >= syn_ack.start and a.first.ack in (None, _next_seq(syn_ack.first.seq))
                ),
                None,
            )
        reached = syn.observations[-1]
        endpoint = endpoint_text(reached.dst, reached.dport)
        result.append(
            Handshake(
                client=endpoint_text(flow.src, flow.sport),
                server=endpoint_text(flow.dst, flow.dport),
                endpoint=endpoint if endpoint != endpoint_text(flow.dst, flow.dport) else None,
                syn=syn,
                syn_ack=syn_ack,
                ack=ack,
                syn_sent=len(sent),
            )
        )
    result.sort(key=lambda h: h.syn.start if h.syn is not None else 0.0)
    return result
