"""tshark's summary lines (capture_format.py's columns) → PacketSummary, fast; malformed lines counted."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from enum import StrEnum
from struct import Struct
from struct import error as StructError
from typing import Final

from labyrinth_tui.model.packets import (
    HAS_ACK,
    HAS_DNS_ID,
    HAS_DNS_RCODE,
    HAS_DPORT,
    HAS_IP_ID,
    HAS_OUTER_DPORT,
    HAS_OUTER_SPORT,
    HAS_PAYLOAD_HASH,
    HAS_SEQ,
    HAS_SPORT,
    HAS_VNI,
    NUMBERS,
    Extra,
    PacketSummary,
)
from labyrinth_tui.model.text import inert
from labyrinth_tui.probes.capture_format import DEFAULT_FORMAT, SummaryFormat

_pack = NUMBERS.pack
_from_packed = PacketSummary.from_packed
_new = tuple.__new__

_FLAG_BITS: Final = (
    (0x001, "FIN"),
    (0x002, "SYN"),
    (0x004, "RST"),
    (0x008, "PSH"),
    (0x010, "ACK"),
    (0x020, "URG"),
    (0x040, "ECE"),
    (0x080, "CWR"),
    (0x100, "AE"),
)


def tcp_flags_text(bits: int) -> str:
    """tshark's order, our separator: 0x012 → "SYN,ACK"; no flag set → "" (a null scan)."""
    return ",".join(name for bit, name in _FLAG_BITS if bits & bit)


# tshark 4.0 prints tcp.flags as "0x012"; newer versions as "0x0012": both are in the table
_FLAGS: Final[dict[str, str]] = {
    **{f"0x{bits:03x}": tcp_flags_text(bits) for bits in range(0x1000)},
    **{f"0x{bits:04x}": tcp_flags_text(bits) for bits in range(0x1000)},
}


class SkipReason(StrEnum):
    """Why a line did not become a packet (counted per stream, shown to the user)."""

    FIELD_COUNT = "wrong number of fields"
    NOT_A_NUMBER = "a numeric field is not a number"
    OUT_OF_RANGE = "a number is out of range"
    BAD_TIMESTAMP = "the timestamp is not a time"


_INTERN_MAX: Final = 65_536  # distinct strings kept for sharing; cleared past this so junk cannot grow it

# NUMBERS followed by an info of N bytes, packed in one call: the same bytes as NUMBERS.pack(...) + info
# without the second bytes object and its copy (~0.05 us of a list line's ~1.9 us). One Struct per
# length seen; an info longer than _PACKED_INFO_MAX is rare and gets a Struct of its own, not kept.
_PACKED_INFO_MAX: Final = 2048
_PACKERS: dict[int, Callable[..., bytes]] = {}


def _packer(length: int) -> Callable[..., bytes]:
    """Struct(NUMBERS + f"{length}s").pack, kept for lengths up to _PACKED_INFO_MAX."""
    pack = Struct(f"{NUMBERS.format}{length}s").pack
    if length <= _PACKED_INFO_MAX:
        _PACKERS[length] = pack
    return pack


class SummaryParser:
    """Lines of one stream (tshark with `fmt`'s options) → PacketSummary, sharing repeated strings.

    Never raises on a line: a malformed one returns None and is counted in `skipped` by reason, with
    the newest kept in `last_skipped` ("reason: line excerpt") for the user to see.

    `number` counts on across a recording ring's files (tshark restarts at 1 in each): packet N of
    the stream is frame N of the ring's files joined in order (`merge_recording_argv`), and
    `file_starts` says which number each file begins with.
    """

    def __init__(self, node: str, interface: str, fmt: SummaryFormat = DEFAULT_FORMAT) -> None:
        self.node = node
        self.interface = interface
        self.format = fmt
        self._width = len(fmt.columns)
        self._last = self._width - 1
        self._payload = fmt.payload_hash
        self._list_only = not fmt.journey
        self.parsed = 0
        self.skipped: Counter[SkipReason] = Counter()
        self.last_skipped = ""
        self._strings: dict[str, str] = {}
        self._extras: dict[Extra, Extra] = {}
        self._outers: dict[str, tuple[str | None, str | None, int, int, int]] = {}
        self._ports: dict[str, int] = {}  # port column → int: a flow repeats its ports, int() is ~3x a lookup
        self._offset = 0  # packets in the recording files before the current one
        self._last_local = 0
        self.file_starts = [1]  # the stream number each recording file starts at (one file: [1])

    def next_file(self, before: int) -> None:
        """The lines that follow number their frames from 1 again, after `before` packets of the stream."""
        self._offset, self._last_local = before, 0
        self.file_starts.append(before + 1)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def parse_many(self, lines: Iterable[str]) -> list[PacketSummary]:
        if self._list_only:
            return self._parse_list_many(lines)
        parse = self.parse
        return [p for p in map(parse, lines) if p is not None]

    def _skip(self, reason: SkipReason, line: str) -> None:
        self.skipped[reason] += 1
        self.last_skipped = f"{reason.value}: {line[:120]!r}"

    def _intern(self, text: str) -> str:
        strings = self._strings
        found = strings.get(text)
        if found is None:
            if len(strings) >= _INTERN_MAX:
                strings.clear()
            found = strings[text] = inert(text.strip())  # once per distinct string: tshark's, or not
        return found

    def parse(self, line: str) -> PacketSummary | None:
        # one long function on purpose: it runs ~150k times a second; locals, few calls
        if self._list_only:
            packets = self._parse_list_many((line,))
            return packets[0] if packets else None
        f = line.split("\t", self._last)
        if len(f) != self._width:
            self._skip(SkipReason.FIELD_COUNT, line)
            return None
        try:
            ts = float(f[0])
            if not 0.0 <= ts < 1e11:  # also false for nan
                self._skip(SkipReason.BAD_TIMESTAMP, line)
                return None
            present = 0
            sport = dport = seq = ack = ip_id = vni = osport = odport = dns_id = rcode = payload_hash = 0
            flags: str | None = None
            if v := f[4]:
                sport = int(v)
                present = HAS_SPORT
            if v := f[6]:
                dport = int(v)
                present |= HAS_DPORT
            if v := f[8]:
                flags = _FLAGS.get(v)
                if flags is None:
                    flags = tcp_flags_text(int(v, 16))
                if v := f[9]:
                    seq = int(v)
                    present |= HAS_SEQ
                if v := f[10]:
                    ack = int(v)
                    present |= HAS_ACK
            if v := f[11]:
                ip_id = int(v, 16)
                present |= HAS_IP_ID
            extra: Extra | None = None
            inner_udp = flags is None  # without VXLAN: no TCP header, so UDP if it has ports at all
            outer_src = outer_dst = dns_query = dns_answer = dns_qtype = None
            if v := f[12]:
                vni = int(v)
                present |= HAS_VNI
                # a flow repeats its outer column: parse each distinct one once
                outer = self._outers.get(f[13])
                if outer is None:
                    if len(self._outers) >= _INTERN_MAX:
                        self._outers.clear()
                    outer = self._outers[f[13]] = _outer(f[13])
                outer_src, outer_dst, osport, odport, count = outer
                if count >= 2:
                    present |= HAS_OUTER_SPORT | HAS_OUTER_DPORT
                # %S/%D show the innermost ports; an inner packet without any shows the outer UDP's
                inner_udp = flags is None and count >= 4
                if flags is None and not inner_udp:
                    sport = dport = 0
                    present &= ~(HAS_SPORT | HAS_DPORT)
            if (v := f[14]) or f[15] or outer_src is not None:
                if v:
                    dns_query = v
                    dns_id, dns_qtype = _dns_from_info(f[-1], v)
                    if dns_id >= 0:
                        present |= HAS_DNS_ID
                    else:
                        dns_id = 0
                if v := f[15]:
                    code, _, answers = v.partition(",")
                    rcode = int(code)
                    present |= HAS_DNS_RCODE
                    if answers:
                        dns_answer = answers
                key = (dns_query, dns_answer, dns_qtype, outer_src, outer_dst)
                extra = self._extras.get(key)
                if extra is None:
                    if len(self._extras) >= _INTERN_MAX:
                        self._extras.clear()
                    # once per distinct key: a name from a DNS packet may be anything
                    query, answer, qtype, o_src, o_dst = (inert(v) if v else v for v in key)
                    extra = self._extras[key] = (query, answer, qtype, o_src, o_dst)
            if self._payload and (v := f[16]) and inner_udp and present & HAS_SPORT:
                payload_hash = zlib.crc32(v.encode())
                present |= HAS_PAYLOAD_HASH
            # a recording ring (-b) restarts tshark's numbering in every file: keep the stream's going
            local = int(f[1])
            offset = self._offset + self._last_local if local <= self._last_local else self._offset
            raw = _pack(
                ts, offset + local, int(f[2]), seq, ack, vni, payload_hash,
                sport, dport, ip_id, osport, odport, dns_id, rcode, present,
            )  # fmt: skip
        except ValueError:
            self._skip(SkipReason.NOT_A_NUMBER, line)
            return None
        except StructError:
            self._skip(SkipReason.OUT_OF_RANGE, line)
            return None
        return self._packet(raw, offset, local, f, flags, extra)

    def _packet(
        self,
        raw: bytes,
        offset: int,
        local: int,
        f: list[str],
        flags: str | None,
        extra: tuple[str | None, str | None, str | None, str | None, str | None] | None,
    ) -> PacketSummary:
        """What both line formats end with: the run's numbering, interned strings, inert info.

        f is the split line: src, dst and protocol at 3, 5 and 7 in both formats, the info last."""
        if offset != self._offset:
            self._offset = offset
            self.file_starts.append(offset + local)
        self._last_local = local
        strings = self._strings
        src = strings.get(f[3]) or self._intern(f[3])
        dst = strings.get(f[5]) or self._intern(f[5])
        protocol = strings.get(f[7]) or self._intern(f[7])
        self.parsed += 1
        # tshark escapes what it prints (\x1b shows as "\\x1b"); a node that is not tshark might not
        text = f[-1] if f[-1].isprintable() else inert(f[-1])
        info = text.encode("utf-8", "surrogatepass")
        return _from_packed(raw + info, self.node, self.interface, src, dst, protocol, flags, extra)

    def _parse_list_many(self, lines: Iterable[str]) -> list[PacketSummary]:
        """LIST_FORMAT lines (ts, number, length, src, sport, dst, dport, protocol, info) in one loop.

        What `_packet` does for the full format, inlined: one Python frame per line instead of four
        (parse, its format's parser, _packet, from_packed) is ~20% of the parser's time at 150k lines/s
        (`bench/capture_ingest.py`, "its parser + ring alone").
        """
        out: list[PacketSummary] = []
        append, skip = out.append, self._skip
        strings, intern, node, interface = self._strings, self._intern, self.node, self.interface
        ports, packers = self._ports, _PACKERS
        offset, last_local, parsed = self._offset, self._last_local, 0
        try:
            for line in lines:
                f = line.split("\t", 8)
                if len(f) != 9:
                    skip(SkipReason.FIELD_COUNT, line)
                    continue
                try:
                    ts = float(f[0])
                    if not 0.0 <= ts < 1e11:  # also false for nan
                        skip(SkipReason.BAD_TIMESTAMP, line)
                        continue
                    present = sport = dport = 0
                    if v := f[4]:
                        sport = ports.get(v) or _port(ports, v)  # port 0: int() again, still 0
                        present = HAS_SPORT
                    if v := f[6]:
                        dport = ports.get(v) or _port(ports, v)
                        present |= HAS_DPORT
                    local = int(f[1])
                    # a recording ring (-b) restarts tshark's numbering in every file: keep the stream's going
                    start = offset + last_local if local <= last_local else offset
                    # tshark escapes what it prints (\x1b shows as "\\x1b"); another node's output might not
                    info = (f[8] if f[8].isprintable() else inert(f[8])).encode("utf-8", "surrogatepass")
                    pack = packers.get(len(info)) or _packer(len(info))
                    raw = pack(
                        ts, start + local, int(f[2]), 0, 0, 0, 0, sport, dport, 0, 0, 0, 0, 0, present, info
                    )
                except ValueError:
                    skip(SkipReason.NOT_A_NUMBER, line)
                    continue
                except StructError:
                    skip(SkipReason.OUT_OF_RANGE, line)
                    continue
                if start != offset:
                    offset = start
                    self.file_starts.append(start + local)
                last_local = local
                src = strings.get(f[3]) or intern(f[3])
                dst = strings.get(f[5]) or intern(f[5])
                protocol = strings.get(f[7]) or intern(f[7])
                append(_new(PacketSummary, (raw, node, interface, src, dst, protocol, None, None)))
                parsed += 1
        finally:  # what was taken counts even if a line raised what no tshark line can
            self._offset, self._last_local = offset, last_local
            self.parsed += parsed
        return out


def _port(ports: dict[str, int], column: str) -> int:
    """int(column), remembered (ValueError as int's); the range is NUMBERS's to check, as for any number."""
    if len(ports) >= _INTERN_MAX:
        ports.clear()
    value = ports[column] = int(column)
    return value


def _dns_from_info(info: str, name: str) -> tuple[int, str | None]:
    """(dns id or -1, qtype) from DNS info: "Standard query [response] 0x10e6 [No such name ]A name…"."""
    head, found, _ = info.partition(" " + name)
    if not found:
        return -1, None
    words = head.split(" ")
    dns_id = next((int(w, 16) for w in words if len(w) == 6 and w.startswith("0x") and _is_hex(w[2:])), -1)
    return dns_id, words[-1] or None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _outer(column: str) -> tuple[str | None, str | None, int, int, int]:
    """The outer src, dst, sport, dport and how many UDP ports the "outer" column lists.

    E.g. "10.168.0.4,10.168.0.5,10.0.1.15,10.0.2.215,58194,8472" for TCP in VXLAN.
    ip.addr lists every IPv4 header's src,dst (outer first), then udp.port every UDP header's ports.
    An IPv6 underlay is not read here (its addresses are in ipv6.addr): outer_src stays None.
    """
    addresses = [part for part in column.split(",") if "." in part]
    ports = [part for part in column.split(",") if part and "." not in part]
    outer_src = addresses[0] if len(addresses) >= 2 else None
    outer_dst = addresses[1] if len(addresses) >= 2 else None
    if len(ports) < 2:
        return outer_src, outer_dst, 0, 0, len(ports)
    return outer_src, outer_dst, int(ports[0]), int(ports[1]), len(ports)


# Reading tshark's output: it writes 4 KiB at a time (`strace -f -e trace=write tshark -r FILE … >/dev/null`
# shows write(1, …, 4096)), so a reader that takes each write as it comes wakes ~6,000 times per 200k
# lines, ~0.3 µs of Python a line (and tshark's wake-ups too). After a read shorter than GATHER_BELOW,
# a reader pauses GATHER_PAUSE and lets the pipe or the SSH channel's buffer gather: ~430 reads for the
# same lines (`bench/capture_ingest.py`). 2 ms is nothing beside the 50 ms a live stream's packets wait
# for their batch (sources/captures.py FLUSH_EVERY), and a 1 MiB pipe takes ~50 ms to fill at tshark's pace.
GATHER_BELOW: Final = 1 << 16
GATHER_PAUSE: Final = 0.002


class LineAssembler:
    """Chunks of a text stream → complete lines (for readers that read big chunks, not line by line)."""

    def __init__(self, max_line: int = 1 << 20) -> None:
        self._rest = ""
        self.max_line = max_line
        self.overlong = 0  # partial lines thrown away for exceeding max_line

    def feed(self, chunk: str) -> list[str]:
        lines = chunk.split("\n")
        if self._rest:  # only the first line is joined: not a copy of the whole chunk
            lines[0] = self._rest + lines[0]
        self._rest = lines.pop()
        if len(self._rest) > self.max_line:
            self._rest = ""
            self.overlong += 1
        return lines

    def flush(self) -> list[str]:
        """The last line when the stream ended without a newline."""
        rest, self._rest = self._rest, ""
        return [rest] if rest else []
