"""tshark's summary columns we ask for: which, in what order, and the options that make tshark print them.

Why this output: `-T fields` makes tshark build and format the full visible tree (~55k packets/s
here), `-T ek`/`json` ~12k/s, while the one-line summary with custom columns only primes the fields
it names (~125k/s, the plain summary ~170k/s). So we ask for `-T tabs` with our own column list
(`-o gui.column.format:…`): tab-separated, info last so a tab inside it cannot shift the others.
The parser of these lines is capture_parse.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# (name, tshark column format). Occurrence -1 = the innermost header (the inner packet of VXLAN);
# :U = the raw value ("0x0012", not "0x0012 (18)").
_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("ts", "%t"),  # with `-t e`: seconds since the epoch
    ("number", "%m"),
    ("length", "%L"),
    ("src", "%s"),  # built-in address/port columns: cheap, innermost layer, padded by tshark
    ("sport", "%S"),
    ("dst", "%d"),  # not right after %s: tshark would insert a "→" column between them
    ("dport", "%D"),
    ("protocol", "%p"),
    ("tcp_flags", "%Cus:tcp.flags:-1:U"),
    ("seq", "%Cus:tcp.seq_raw:-1"),  # raw: relative numbers restart at each capture, hops must match
    ("ack", "%Cus:tcp.ack_raw:-1"),
    ("ip_id", "%Cus:ip.id:-1:U"),
    ("vni", "%Cus:vxlan.vni:1"),
    ("outer", "%Cus:ip.addr || udp.port"),  # every ip.addr, then every udp.port: outer ones first
    ("dns_query", "%Cus:dns.qry.name"),
    ("dns_result", "%Cus:dns.flags.rcode || dns.a || dns.aaaa:0:U"),  # "3" or "0,10.96.0.10"
    # dns.id and dns.qry.type are read from the info line instead: each custom field costs tshark ~2%
)
# what the packet list shows, and nothing tshark must build a tree for: built-in columns only (every
# custom column above costs tshark CPU; all of them make it ~1.4 × its plain summary's, these ~1.05 ×:
# `bench/capture_ingest.py`)
_LIST_COLUMNS: Final = _COLUMNS[:8]
_PAYLOAD_COLUMN: Final = ("payload", "%Cus:udp.payload:-1")  # hex, cut by tshark at ~72 bytes
_INFO_COLUMN: Final = ("info", "%i")


@dataclass(frozen=True, slots=True)
class SummaryFormat:
    """Which columns tshark prints; the argv builders and the parser must share one.

    `journey` asks for the journey's fields too (TCP flags, raw seq/ack, ip.id, VXLAN vni and outer
    addresses, DNS query and answers): the hop captures a journey stitches need them; a stream that is
    only watched does not (LIST_FORMAT: its packets carry the list's columns, the rest stays None; its
    recording has every byte). `payload_hash` adds the UDP payload column (for stitching UDP across
    hops by its content): it costs ~5% of tshark's rate, so it is off unless a journey needs it.
    """

    payload_hash: bool = False
    journey: bool = True

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        if not self.journey:
            return (*_LIST_COLUMNS, _INFO_COLUMN)
        extra = (_PAYLOAD_COLUMN,) if self.payload_hash else ()
        return (*_COLUMNS, *extra, _INFO_COLUMN)

    def tshark_options(self) -> list[str]:
        """The tshark options that make it print these columns, tab-separated, epoch timestamps."""
        # column titles are never printed (no header line in -T tabs); keep them short
        spec = ",".join(f'"{name}","{fmt}"' for name, fmt in self.columns)
        return ["-t", "e", "-T", "tabs", "-o", f"gui.column.format:{spec}", *_CHEAPER]


# Custom columns make tshark build a (hidden) tree; these only shorten the tree's protocol lines, which
# we never print: ~3% less CPU, byte-identical output (checked on the 200k-packet bench file).
_CHEAPER: Final = (
    *("-o", "ip.summary_in_tree:FALSE"),
    *("-o", "udp.summary_in_tree:FALSE"),
    *("-o", "tcp.summary_in_tree:FALSE"),
)

DEFAULT_FORMAT: Final = SummaryFormat()
LIST_FORMAT: Final = SummaryFormat(journey=False)
