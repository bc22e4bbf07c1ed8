"""Crafted IPv4 TCP/UDP frames and an independent checksum parser, for the BPF programs' tests."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ETH = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"


def inet_checksum(data: bytes) -> int:
    """RFC 1071, written here independently of the programs: 0 over a correct header + checksum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src: str, dst: str, sport: int, dport: int, proto: str = "TCP", udp_checksum: bool = True) -> bytes:
    """An Ethernet frame with a correct IPv4 header and TCP SYN / UDP datagram (payload included)."""
    payload = b"labyrinth"
    saddr, daddr = socket.inet_aton(src), socket.inet_aton(dst)
    if proto == "TCP":
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0) + payload
        number, csum_at = 6, 16
    else:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        number, csum_at = 17, 6
    if proto == "TCP" or udp_checksum:
        pseudo = saddr + daddr + struct.pack("!BBH", 0, number, len(l4))
        l4 = l4[:csum_at] + struct.pack("!H", inet_checksum(pseudo + l4) or 0xFFFF) + l4[csum_at + 2 :]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 7, 0x4000, 64, number, 0, saddr, daddr)
    ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
    return ETH + ip + l4


@dataclass(frozen=True)
class Parsed:
    src: str
    dst: str
    sport: int
    dport: int
    ip_ok: bool
    l4_ok: bool
    l4_checksum: int


def parse(data: bytes) -> Parsed:
    ip = data[14:34]
    ihl = (ip[0] & 0x0F) * 4
    number, total = ip[9], struct.unpack("!H", ip[2:4])[0]
    l4 = data[14 + ihl : 14 + total]
    sport, dport = struct.unpack("!HH", l4[:4])
    csum_at = 16 if number == 6 else 6
    stored = struct.unpack("!H", l4[csum_at : csum_at + 2])[0]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, number, len(l4))
    l4_ok = (number == 17 and stored == 0) or inet_checksum(pseudo + l4) == 0
    return Parsed(
        socket.inet_ntoa(ip[12:16]),
        socket.inet_ntoa(ip[16:20]),
        sport,
        dport,
        inet_checksum(ip[:ihl]) == 0,
        l4_ok,
        stored,
    )
