"""A batch of list lines (tshark) parsed column by column in C (map, zip); None: parse it line by line."""

from __future__ import annotations

from itertools import repeat
from operator import add, lt
from struct import Struct
from struct import error as StructError
from typing import Final

from labyrinth_tui.model.packets import HAS_DPORT, HAS_SPORT, NUMBERS, PacketSummary
from labyrinth_tui.model.text import inert

INTERN_MAX: Final = 65_536  # distinct strings kept for sharing; cleared past this so junk cannot grow it
# An info longer than this is rare: it gets a Struct of its own, not kept (junk cannot grow STRUCTS)
PACKED_INFO_MAX: Final = 2048

_new = tuple.__new__
_EMPTY: Final = {"": 0}  # an empty port column: its bit stays unset (_EMPTY.get(column, bit))
_pack = Struct.pack


class Interned(dict[str, str]):
    """A column's text → the str every packet showing it shares: stripped, made inert once per text."""

    def __missing__(self, text: str) -> str:
        if len(self) >= INTERN_MAX:
            self.clear()
        value = self[text] = inert(text.strip())  # once per distinct string: tshark's, or not
        return value


class Ports(dict[str, int]):
    """A port column → its int ("" → 0): a flow repeats its ports, and int() costs ~3x a lookup.

    Only the parse is remembered: the range is the pack's to check, on every line (70000 is kept as
    70000 and refused each time it comes)."""

    def __missing__(self, column: str) -> int:
        if len(self) >= INTERN_MAX:
            self.clear()
        value = self[column] = int(column) if column else 0  # ValueError as int's
        return value


class Structs(dict[int, Struct]):
    """Info length N → Struct(NUMBERS + "Ns"): numbers and info packed in one call, the same bytes as
    NUMBERS.pack(...) + info without a second bytes object and its copy."""

    def __missing__(self, length: int) -> Struct:
        packer = Struct(f"{NUMBERS.format}{length}s")
        if length <= PACKED_INFO_MAX:
            self[length] = packer
        return packer


STRUCTS: Final = Structs()


def list_columns(
    lines: list[str],
    offset: int,
    last_local: int,
    node: str,
    interface: str,
    strings: Interned,
    ports: Ports,
) -> list[PacketSummary] | None:
    """The packets of `lines` if every one is a well-formed list line numbered on from `last_local`.

    Otherwise None, having changed nothing but the shared caches: the caller parses the batch line by
    line, which counts each bad line with its reason. All or nothing keeps the checks exactly the
    line-by-line ones (tests/unit/test_capture_parse.py compares the two on fuzzed batches) while the
    usual batch makes no Python frame per line: ~10% less CPU a line (`bench/capture_ingest.py`).
    """
    n = len(lines)
    # the lines joined by "\t\n\t" and split on tabs: when no line holds a "\n" of its own, a "\n"
    # field (a shared 1-char str, not allocated) follows every 9 fields exactly when every line has 8 tabs
    joined = "\t\n\t".join(lines)
    if not n or joined.count("\n") != n - 1:
        return None
    f = joined.split("\t")
    if len(f) != 10 * n - 1 or f[9::10].count("\n") != n - 1:
        return None
    try:
        ts = list(map(float, f[0::10]))
        local = list(map(int, f[1::10]))
        lengths = list(map(int, f[2::10]))
        sport_column, dport_column = f[4::10], f[6::10]
        sports = list(map(ports.__getitem__, sport_column))
        dports = list(map(ports.__getitem__, dport_column))
    except ValueError:
        return None
    total = sum(ts)  # nan when one is nan (or +inf and -inf): then min and max would not say
    if not (total == total and min(ts) >= 0.0 and max(ts) < 1e11):
        return None
    # a recording ring's next file (numbers restart) goes line by line, which notes where it starts
    if local[0] <= last_local or not all(map(lt, local, local[1:])):
        return None
    numbers = list(map(add, local, repeat(offset))) if offset else local
    infos = f[8::10]
    # tshark escapes what it prints (\x1b shows as "\\x1b"); another node's output might not
    if not "".join(infos).isprintable():  # one call: ~25% cheaper than one per info
        return None
    encoded = list(map(str.encode, infos, repeat("utf-8"), repeat("surrogatepass")))
    present = map(
        add,
        map(_EMPTY.get, sport_column, repeat(HAS_SPORT)),
        map(_EMPTY.get, dport_column, repeat(HAS_DPORT)),
    )
    zero = repeat(0)
    packers = map(STRUCTS.__getitem__, map(len, encoded))
    # NUMBERS's order: ts, number, length, seq, ack, vni, payload_hash, sport, dport, ip_id, outer ports,
    # dns_id, rcode, present; then the info
    columns = (
        packers, ts, numbers, lengths, zero, zero, zero, zero, sports, dports, zero, zero, zero, zero, zero,
        present, encoded,
    )  # fmt: skip
    try:
        raws = list(map(_pack, *columns))
    except StructError:
        return None
    name = strings.__getitem__
    rows = zip(
        raws, repeat(node), repeat(interface), map(name, f[3::10]), map(name, f[5::10]), map(name, f[7::10]),
        repeat(None), repeat(None),
    )  # fmt: skip
    return list(map(_new, repeat(PacketSummary), rows))
