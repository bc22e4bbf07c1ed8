"""Deterministic pcap writer of the article's traffic (TCP flows, DNS walks, VXLAN on 8472) with ground truth.

Classic libpcap, Ethernet link type, microsecond timestamps, real IPv4/TCP/UDP checksums. It only
writes a file: no packet is ever sent. Each frame comes with the `Truth` a parser should recover from
tshark's output, so tests compare against what was written rather than against hard-coded lines.

Run as a script to write a file: `python -m tests.fakes.pcapgen OUT.pcap [COUNT]`.
"""

from __future__ import annotations

import ipaddress
import random
import struct
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# the article's addresses
POD1 = "10.0.1.15"  # client pod on node 10.168.0.4
POD2 = "10.0.2.215"  # server pod on node 10.168.0.5
NODE1 = "10.168.0.4"
NODE2 = "10.168.0.5"
KUBE_DNS = "10.96.0.10"
VXLAN_PORT = 8472
VNI = 2  # Cilium's VNI carries the source security identity; any 24-bit value decodes the same
SERVER_PORT = 8080

_MAC_POD1 = bytes.fromhex("aa1b2c000115")
_MAC_GW1 = bytes.fromhex("aa1b2c000149")
_MAC_VX1 = bytes.fromhex("ce11aa000004")
_MAC_VX2 = bytes.fromhex("ce11aa000005")
_MAC_ENS4_1 = bytes.fromhex("42010aa80004")
_MAC_ENS4_2 = bytes.fromhex("42010aa80005")

_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10

DNS_NAMES = ("backend", "frontend", "redis", "kubernetes")
DNS_SEARCH = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")


@dataclass(frozen=True, slots=True)
class Truth:
    """What was written into one frame, in PacketSummary's terms (inner addresses; outer_* when wrapped)."""

    kind: str  # "tcp", "dns", "vxlan"
    src: str
    dst: str
    sport: int
    dport: int
    ip_id: int
    tcp_flags: str | None = None
    seq: int | None = None
    ack: int | None = None
    dns_query: str | None = None
    dns_answer: str | None = None
    rcode: int | None = None
    outer_src: str | None = None
    outer_dst: str | None = None
    outer_sport: int | None = None
    outer_dport: int | None = None
    vni: int | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    ts: float
    data: bytes
    truth: Truth


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip4(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def _ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, _ip4(src), _ip4(dst)
    )
    csum = _checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def _l4_checksum(src: str, dst: str, proto: int, segment: bytes) -> int:
    pseudo = _ip4(src) + _ip4(dst) + struct.pack("!BBH", 0, proto, len(segment))
    return _checksum(pseudo + segment)


def _tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    csum = _l4_checksum(src, dst, 6, header + payload)
    return header[:16] + struct.pack("!H", csum) + header[18:] + payload


def _udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    header = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    csum = _l4_checksum(src, dst, 17, header + payload) or 0xFFFF
    return header[:6] + struct.pack("!H", csum) + payload


def _eth(dst: bytes, src: bytes, payload: bytes, ethertype: int = 0x0800) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def _qname(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"


def _dns(txid: int, name: str, qtype: int, response: bool, rcode: int, answer: bytes | None) -> bytes:
    flags = 0x0100 | ((0x8480 | rcode) if response else 0)
    ancount = 1 if answer is not None else 0
    body = struct.pack("!HHHHHH", txid, flags, 1, ancount, 0, 0) + _qname(name) + struct.pack("!HH", qtype, 1)
    if answer is not None:
        body += struct.pack("!HHHIH", 0xC00C, qtype, 1, 30, len(answer)) + answer
    return body


_FLAG_NAMES = ((_FIN, "FIN"), (_SYN, "SYN"), (_RST, "RST"), (_PSH, "PSH"), (_ACK, "ACK"))


def flags_text(flags: int) -> str:
    return ",".join(name for bit, name in _FLAG_NAMES if flags & bit)


class _Writer:
    """Turns scenarios into Frames; keeps time, IP ids and the random stream deterministic."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ts = 1_700_000_000.0
        self.ip_ids: dict[str, int] = {}

    def _tick(self) -> float:
        self.ts += self.rng.choice((0.000_013, 0.000_041, 0.000_2, 0.001))
        return round(self.ts, 6)

    def _next_id(self, src: str) -> int:
        ident = (self.ip_ids.get(src, self.rng.randrange(0, 0xFFFF)) + 1) & 0xFFFF
        self.ip_ids[src] = ident
        return ident

    def tcp_flow(self, encapsulated: bool) -> Iterator[Frame]:
        rng = self.rng
        cport = rng.randrange(32768, 61000)
        c_isn, s_isn = rng.randrange(0, 2**32), rng.randrange(0, 2**32)
        request = b"GET / HTTP/1.1\r\nHost: backend\r\n\r\n"
        response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        c_seq, s_seq = c_isn, s_isn
        steps: list[tuple[bool, int, bytes]] = [  # (from client?, flags, payload)
            (True, _SYN, b""),
            (False, _SYN | _ACK, b""),
            (True, _ACK, b""),
            (True, _PSH | _ACK, request),
            (False, _ACK, b""),
            (False, _PSH | _ACK, response),
            (True, _ACK, b""),
            (True, _FIN | _ACK, b""),
            (False, _FIN | _ACK, b""),
            (True, _ACK, b""),
        ]
        outer_sport = rng.randrange(32768, 61000)  # the kernel hashes the inner flow into the outer sport
        for from_client, flags, payload in steps:
            src, dst = (POD1, POD2) if from_client else (POD2, POD1)
            sport, dport = (cport, SERVER_PORT) if from_client else (SERVER_PORT, cport)
            seq = c_seq if from_client else s_seq
            ack = 0 if flags == _SYN else (s_seq if from_client else c_seq)
            ip_id = self._next_id(src)
            inner = _ipv4(src, dst, 6, _tcp(src, dst, sport, dport, seq, ack, flags, payload), ip_id)
            advance = len(payload) + (1 if flags & (_SYN | _FIN) else 0)
            if from_client:
                c_seq = (c_seq + advance) & 0xFFFFFFFF
            else:
                s_seq = (s_seq + advance) & 0xFFFFFFFF
            truth = Truth("tcp", src, dst, sport, dport, ip_id, flags_text(flags), seq, ack)
            if not encapsulated:
                yield Frame(self._tick(), _eth(_MAC_GW1, _MAC_POD1, inner), truth)
                continue
            osrc, odst = (NODE1, NODE2) if from_client else (NODE2, NODE1)
            osport = outer_sport if from_client else outer_sport ^ 0x0101
            vx = struct.pack("!II", 0x08000000, VNI << 8) + _eth(_MAC_VX2, _MAC_VX1, inner)
            outer_id = self._next_id(osrc)
            outer = _ipv4(osrc, odst, 17, _udp(osrc, odst, osport, VXLAN_PORT, vx), outer_id)
            frame = _eth(_MAC_ENS4_2, _MAC_ENS4_1, outer)
            truth = Truth(
                "vxlan",
                src,
                dst,
                sport,
                dport,
                ip_id,
                flags_text(flags),
                seq,
                ack,
                outer_src=osrc,
                outer_dst=odst,
                outer_sport=osport,
                outer_dport=VXLAN_PORT,
                vni=VNI,
            )
            yield Frame(self._tick(), frame, truth)

    def dns_walk(self) -> Iterator[Frame]:
        """The article's ndots:5 search walk: NXDOMAIN for each suffix, then the answer, A and AAAA."""
        rng = self.rng
        service = rng.choice(DNS_NAMES)
        fqdn = f"{service}.default.svc.cluster.local"
        names = [f"{fqdn}.{suffix}" for suffix in DNS_SEARCH] + [fqdn]
        sport = rng.randrange(32768, 61000)
        for name in names:
            for qtype in (1, 28):
                txid = rng.randrange(0, 0xFFFF)
                q_id = self._next_id(POD1)
                query = _dns(txid, name, qtype, False, 0, None)
                yield Frame(
                    self._tick(),
                    _eth(
                        _MAC_GW1,
                        _MAC_POD1,
                        _ipv4(POD1, KUBE_DNS, 17, _udp(POD1, KUBE_DNS, sport, 53, query), q_id),
                    ),
                    Truth("dns", POD1, KUBE_DNS, sport, 53, q_id, dns_query=name),
                )
                rcode, answer, answer_text = 3, None, None
                if name == fqdn:
                    rcode = 0
                    if qtype == 1:
                        address = f"10.96.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
                        answer, answer_text = _ip4(address), address
                    else:
                        v6 = ipaddress.IPv6Address(f"fd00:10:96::{rng.randrange(1, 0xFFFF):x}")
                        answer, answer_text = v6.packed, str(v6)
                r_id = self._next_id(KUBE_DNS)
                reply = _dns(txid, name, qtype, True, rcode, answer)
                yield Frame(
                    self._tick(),
                    _eth(
                        _MAC_POD1,
                        _MAC_GW1,
                        _ipv4(KUBE_DNS, POD1, 17, _udp(KUBE_DNS, POD1, 53, sport, reply), r_id),
                    ),
                    Truth(
                        "dns",
                        KUBE_DNS,
                        POD1,
                        53,
                        sport,
                        r_id,
                        dns_query=name,
                        dns_answer=answer_text,
                        rcode=rcode,
                    ),
                )


def tcp_flow(seed: int = 5, encapsulated: bool = False) -> list[Frame]:
    """One whole connection: SYN, SYN-ACK, ACK, request, ACK, response, ACK, FIN-ACK, FIN-ACK, ACK."""
    return list(_Writer(seed).tcp_flow(encapsulated))


def dns_walk(seed: int = 5) -> list[Frame]:
    """One ndots:5 search walk: 3 NXDOMAIN pairs then the answered A and AAAA pairs (16 frames)."""
    return list(_Writer(seed).dns_walk())


def frames(count: int, seed: int = 5) -> Iterator[Frame]:
    """Exactly `count` frames: roughly 40% plain TCP, 40% VXLAN-wrapped TCP, 20% DNS, interleaved."""
    writer = _Writer(seed)
    produced = 0
    while True:
        pick = writer.rng.random()
        if pick < 0.4:
            scenario = writer.tcp_flow(encapsulated=False)
        elif pick < 0.8:
            scenario = writer.tcp_flow(encapsulated=True)
        else:
            scenario = writer.dns_walk()
        for frame in scenario:
            if produced == count:
                return
            produced += 1
            yield frame


def encapsulate(frame: Frame, outer_sport: int = 51000, vni: int = VNI, delay: float = 0.000_05) -> Frame:
    """`frame` as node-1's ens4 carries it to node-2: outer Ethernet/IPv4/UDP 8472/VXLAN around it."""
    vx = struct.pack("!II", 0x08000000, vni << 8) + frame.data
    outer = _ipv4(NODE1, NODE2, 17, _udp(NODE1, NODE2, outer_sport, VXLAN_PORT, vx), 0x4242)
    t = frame.truth
    truth = Truth(
        "vxlan",
        t.src,
        t.dst,
        t.sport,
        t.dport,
        t.ip_id,
        t.tcp_flags,
        t.seq,
        t.ack,
        t.dns_query,
        t.dns_answer,
        t.rcode,
        NODE1,
        NODE2,
        outer_sport,
        VXLAN_PORT,
        vni,
    )
    return Frame(round(frame.ts + delay, 6), _eth(_MAC_ENS4_2, _MAC_ENS4_1, outer), truth)


_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def write_frames(path: Path, items: Iterable[Frame]) -> list[Truth]:
    """Write frames to `path` (classic pcap, microseconds) and return what each carries, in order."""
    truths: list[Truth] = []
    with path.open("wb") as out:
        out.write(_PCAP_HEADER)
        for frame in items:
            sec = int(frame.ts)
            usec = round((frame.ts - sec) * 1_000_000)
            out.write(struct.pack("<IIII", sec, usec, len(frame.data), len(frame.data)))
            out.write(frame.data)
            truths.append(frame.truth)
    return truths


def write_pcap(path: Path, count: int, seed: int = 5) -> list[Truth]:
    """Write `count` frames of the article's mix to `path` and return what each frame carries, in order."""
    return write_frames(path, frames(count, seed))


if __name__ == "__main__":
    target = Path(sys.argv[1])
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    write_pcap(target, total)
    print(f"wrote {total} packets to {target}")
