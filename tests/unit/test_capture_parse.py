"""tshark lines → PacketSummary: real tshark on generated pcaps, checked against what was written; fuzzed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.probes.capture import read_argv
from labyrinth_tui.probes.capture_format import DEFAULT_FORMAT, LIST_FORMAT, SummaryFormat
from labyrinth_tui.probes.capture_parse import LineAssembler, SkipReason, SummaryParser, tcp_flags_text
from tests.fakes.pcapgen import (
    KUBE_DNS,
    NODE1,
    NODE2,
    POD1,
    POD2,
    VNI,
    Frame,
    Truth,
    dns_walk,
    encapsulate,
    frames,
    tcp_flow,
    write_frames,
)

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make setup)")


def tshark_lines(pcap: Path, fmt: SummaryFormat = DEFAULT_FORMAT) -> list[str]:
    done = subprocess.run(read_argv(str(pcap), fmt=fmt), capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def parse_file(pcap: Path, fmt: SummaryFormat = DEFAULT_FORMAT) -> tuple[list[PacketSummary], SummaryParser]:
    parser = SummaryParser("node-1", "ens4", fmt)
    return parser.parse_many(tshark_lines(pcap, fmt)), parser


@pytest.fixture(scope="module")
def article(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Frame], list[PacketSummary], list[str]]:
    """600 frames of the article's mix (TCP flows, VXLAN-wrapped flows, DNS walks), through real tshark."""
    pcap = tmp_path_factory.mktemp("capture") / "article.pcap"
    written = list(frames(600))
    write_frames(pcap, written)
    lines = tshark_lines(pcap)
    parser = SummaryParser("node-1", "ens4")
    packets = parser.parse_many(lines)
    assert parser.skipped_total == 0, parser.last_skipped
    return written, packets, lines


def expected(t: Truth) -> dict[str, object]:
    return {
        "src": t.src, "dst": t.dst, "sport": t.sport, "dport": t.dport, "ip_id": t.ip_id,
        "tcp_flags": t.tcp_flags, "seq": t.seq, "ack": t.ack, "dns_query": t.dns_query,
        "dns_answer": t.dns_answer, "dns_rcode": t.rcode, "outer_src": t.outer_src, "outer_dst": t.outer_dst,
        "outer_sport": t.outer_sport, "outer_dport": t.outer_dport, "vni": t.vni,
    }  # fmt: skip


def test_every_packet_reads_back_as_written(
    article: tuple[list[Frame], list[PacketSummary], list[str]],
) -> None:
    written, packets, _ = article
    assert len(packets) == len(written)
    for number, (frame, packet) in enumerate(zip(written, packets, strict=True), start=1):
        assert {k: getattr(packet, k) for k in expected(frame.truth)} == expected(frame.truth), number
        assert packet.number == number
        assert packet.length == len(frame.data)
        assert packet.ts == pytest.approx(frame.ts, abs=1e-6)
        assert (packet.node, packet.interface) == ("node-1", "ens4")
        assert packet.info  # tshark's own one-line summary is kept for display


def test_the_list_format_gives_the_lists_columns_alike_and_leaves_the_journeys_out(
    tmp_path: Path, article: tuple[list[Frame], list[PacketSummary], list[str]]
) -> None:
    """A watched stream asks tshark for the list's columns only: the same rows, no journey fields."""
    written, full, _ = article
    pcap = tmp_path / "article.pcap"
    write_frames(pcap, written)
    listed, parser = parse_file(pcap, LIST_FORMAT)
    assert parser.skipped_total == 0, parser.last_skipped
    assert len(LIST_FORMAT.columns) == 9 < len(DEFAULT_FORMAT.columns)
    shown = ("ts", "number", "length", "src", "dst", "sport", "dport", "protocol", "info")
    assert [[getattr(p, k) for k in shown] for p in listed] == [[getattr(p, k) for k in shown] for p in full]
    journey = ("tcp_flags", "seq", "ack", "ip_id", "vni", "outer_src", "dns_query", "dns_answer")
    assert all(getattr(p, k) is None for p in listed for k in journey)
    assert any(p.vni is not None for p in full) and any(p.seq is not None for p in full)


def test_vxlan_packet_shows_the_inner_packet_and_how_it_travelled(
    article: tuple[list[Frame], list[PacketSummary], list[str]],
) -> None:
    written, packets, _ = article
    wrapped = [p for f, p in zip(written, packets, strict=True) if f.truth.kind == "vxlan"]
    plain_tcp = [p for f, p in zip(written, packets, strict=True) if f.truth.kind == "tcp"]
    assert wrapped and plain_tcp
    syn = next(p for p in wrapped if p.tcp_flags == "SYN")
    assert (syn.src, syn.dst, syn.dport) == (POD1, POD2, 8080)  # inner: pod to pod
    assert (syn.outer_src, syn.outer_dst, syn.outer_dport, syn.vni) == (NODE1, NODE2, 8472, VNI)
    assert syn.encapsulated and syn.protocol == "TCP" and "[SYN]" in syn.info
    assert all(p.outer_src is None and p.vni is None and not p.encapsulated for p in plain_tcp)


def test_dns_walk_queries_nxdomain_and_answers(
    article: tuple[list[Frame], list[PacketSummary], list[str]],
) -> None:
    written, packets, _ = article
    dns = [(f.truth, p) for f, p in zip(written, packets, strict=True) if f.truth.kind == "dns"]
    queries = [p for t, p in dns if t.rcode is None]
    nxdomain = [p for t, p in dns if t.rcode == 3]
    answered = [p for t, p in dns if t.rcode == 0]
    assert queries and nxdomain and answered
    assert all(
        q.dst == KUBE_DNS and q.dport == 53 and q.dns_rcode is None and q.dns_answer is None for q in queries
    )
    assert all(r.dns_answer is None and "No such name" in r.info for r in nxdomain)
    assert {p.dns_qtype for p in answered} == {"A", "AAAA"}
    v6 = next(p for p in answered if p.dns_qtype == "AAAA")
    assert v6.dns_answer is not None and v6.dns_answer.startswith("fd00:10:96::")
    # the id pairs a query with its answer, as tshark shows it in the info line
    for _, reply in dns[1::2]:
        assert reply.dns_id is not None and f"0x{reply.dns_id:04x}" in reply.info


def test_tcp_flags_and_raw_sequence_numbers_survive_a_later_capture_start(tmp_path: Path) -> None:
    """Captures starting at different packets agree on seq/ack for the same packet, so hops can match."""
    flow = tcp_flow()
    early, late = tmp_path / "early.pcap", tmp_path / "late.pcap"
    write_frames(early, flow)
    write_frames(late, flow[3:])
    first, _ = parse_file(early)
    second, _ = parse_file(late)
    assert [p.tcp_flags for p in first[:3]] == ["SYN", "SYN,ACK", "ACK"]
    assert first[-3].tcp_flags == "FIN,ACK" and "PSH" in (first[3].tcp_flags or "")
    syn, syn_ack = first[0], first[1]
    assert syn.seq == flow[0].truth.seq and syn.seq not in (0, 1)  # raw, not tshark's relative 0
    assert syn.seq is not None and syn_ack.ack == (syn.seq + 1) % 2**32
    by_ip_id = {p.ip_id: (p.seq, p.ack) for p in first}
    assert all(by_ip_id[p.ip_id] == (p.seq, p.ack) for p in second)


def test_the_same_dns_query_on_lxc_and_ens4_keys_alike(tmp_path: Path) -> None:
    """What a journey matches on (ids, ports, payload hash) is equal; only ens4's copy has outer fields."""
    query = dns_walk()[0]
    pcap = tmp_path / "hops.pcap"
    write_frames(pcap, [query, encapsulate(query)])
    fmt = SummaryFormat(payload_hash=True)
    (on_lxc, on_ens4), _ = parse_file(pcap, fmt)
    keys = ("src", "dst", "sport", "dport", "ip_id", "dns_id", "dns_query", "dns_qtype", "payload_hash")
    assert {k: getattr(on_lxc, k) for k in keys} == {k: getattr(on_ens4, k) for k in keys}
    assert on_lxc.payload_hash is not None
    assert (on_lxc.vni, on_lxc.outer_src) == (None, None)
    assert (on_ens4.vni, on_ens4.outer_src, on_ens4.outer_dport) == (VNI, NODE1, 8472)


def test_payload_hash_is_left_out_for_tcp_even_inside_vxlan(tmp_path: Path) -> None:
    syn = tcp_flow()[0]
    pcap = tmp_path / "tcp.pcap"
    write_frames(pcap, [syn, encapsulate(syn)])
    packets, _ = parse_file(pcap, SummaryFormat(payload_hash=True))
    assert [p.payload_hash for p in packets] == [None, None]  # the outer UDP payload is not the packet's


def test_default_format_has_no_payload_hash_and_one_column_less() -> None:
    assert len(SummaryFormat(payload_hash=True).columns) == len(DEFAULT_FORMAT.columns) + 1
    assert DEFAULT_FORMAT.columns[-1][1] == "%i"  # info last: a tab inside it cannot shift the others


@pytest.mark.parametrize(
    ("bits", "text"),
    [(0x002, "SYN"), (0x012, "SYN,ACK"), (0x011, "FIN,ACK"), (0x018, "PSH,ACK"), (0x014, "RST,ACK"), (0, "")],
)
def test_tcp_flags_text(bits: int, text: str) -> None:
    assert tcp_flags_text(bits) == text


def test_numbers_go_on_across_recording_files(
    article: tuple[list[Frame], list[PacketSummary], list[str]],
) -> None:
    """tshark -b restarts at 1 in each file; the stream's packet N is frame N of the files joined."""
    _, _, lines = article
    local = [1, 2, 3, 1, 2, 1, 2, 3, 4]
    parser = SummaryParser("node-1", "ens4")
    packets = parser.parse_many(
        with_field(line, "number", f"{n:5d}") for line, n in zip(lines, local, strict=False)
    )
    assert [p.number for p in packets] == list(range(1, 10))
    assert parser.file_starts == [1, 4, 6]


# --- malformed lines --------------------------------------------------------------------------------


def column(name: str, fmt: SummaryFormat = DEFAULT_FORMAT) -> int:
    return [n for n, _ in fmt.columns].index(name)


def with_field(line: str, name: str, value: str, fmt: SummaryFormat = DEFAULT_FORMAT) -> str:
    fields = line.split("\t")
    fields[column(name, fmt)] = value
    return "\t".join(fields)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda line: line[: len(line) // 3], SkipReason.FIELD_COUNT),
        (lambda line: line.replace("\t", "", 2), SkipReason.FIELD_COUNT),
        (lambda line: with_field(line, "number", "12a"), SkipReason.NOT_A_NUMBER),
        (lambda line: with_field(line, "seq", "many"), SkipReason.NOT_A_NUMBER),
        (lambda line: with_field(line, "ip_id", "0xzz"), SkipReason.NOT_A_NUMBER),
        (lambda line: with_field(line, "sport", "70000"), SkipReason.OUT_OF_RANGE),
        (lambda line: with_field(line, "length", "-4"), SkipReason.OUT_OF_RANGE),
        (lambda line: with_field(line, "ts", "nan"), SkipReason.BAD_TIMESTAMP),
        (lambda line: with_field(line, "ts", "-1"), SkipReason.BAD_TIMESTAMP),
    ],
)
def test_malformed_lines_are_skipped_with_their_reason(
    article: tuple[list[Frame], list[PacketSummary], list[str]], mutate: object, reason: SkipReason
) -> None:
    _, _, lines = article
    parser = SummaryParser("node-1", "ens4")
    bad = mutate(lines[0])  # type: ignore[operator]
    assert parser.parse(bad) is None
    assert parser.skipped == {reason: 1}
    assert parser.last_skipped.startswith(reason.value)
    assert parser.parse(lines[1]) is not None  # and the stream goes on


_FUZZ_LINES: list[str] = []


def fuzz_lines() -> list[str]:
    """Real tshark lines of 60 article packets, made once (hypothesis calls the test hundreds of times)."""
    if not _FUZZ_LINES:
        with tempfile.TemporaryDirectory() as tmp:
            pcap = Path(tmp) / "fuzz.pcap"
            write_frames(pcap, frames(60))
            _FUZZ_LINES.extend(tshark_lines(pcap))
    return _FUZZ_LINES


def mutations(lines: Sequence[str], fmt: SummaryFormat = DEFAULT_FORMAT) -> st.SearchStrategy[str]:
    line = st.sampled_from(lines)
    junk = st.one_of(
        st.text(max_size=40),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
        st.binary(max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape")),
        st.sampled_from(["\t", "\t\t", ",", "0x", "-", "-5", "70000", "4294967296", "nan", "1e400", "٣"]),
    )
    names = [name for name, _ in fmt.columns]
    return st.one_of(
        st.tuples(line, st.integers(0, 400)).map(lambda t: t[0][: t[1]]),  # truncated
        st.tuples(line, st.integers(0, 400), junk).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
        ),  # junk in
        st.tuples(line, st.sampled_from(names), junk).map(lambda t: with_field(*t, fmt)),  # one replaced
        junk,
    )


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_fuzzed_lines_never_crash_and_every_line_is_accounted_for(data: st.DataObject) -> None:
    batch = data.draw(st.lists(mutations(fuzz_lines()), min_size=1, max_size=20), label="lines")
    parser = SummaryParser("node-1", "ens4")
    packets = parser.parse_many(batch)
    assert parser.parsed == len(packets)
    assert parser.parsed + parser.skipped_total == len(batch)
    for packet in packets:
        assert isinstance(packet.number, int) and 0 <= packet.ts < 1e11
        assert packet.as_dict()["info"] == packet.info  # every field reads back


_FUZZ_LIST_LINES: list[str] = []


def fuzz_list_lines() -> list[str]:
    """The same 60 packets in the list's format (what a watched stream reads)."""
    if not _FUZZ_LIST_LINES:
        with tempfile.TemporaryDirectory() as tmp:
            pcap = Path(tmp) / "fuzz.pcap"
            write_frames(pcap, frames(60))
            _FUZZ_LIST_LINES.extend(tshark_lines(pcap, LIST_FORMAT))
    return _FUZZ_LIST_LINES


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fuzzed_list_lines_read_alike_in_one_batch_or_one_by_one(data: st.DataObject) -> None:
    """The list format parses a whole chunk in one loop: a batch gives what its lines give one at a time
    (numbers carried on across lines that restart, skips counted alike), and never crashes."""
    lines = fuzz_list_lines()
    batch = data.draw(st.lists(st.one_of(st.sampled_from(lines), mutations(lines, LIST_FORMAT)), max_size=20))
    by_batch = SummaryParser("node-1", "ens4", LIST_FORMAT)
    one_by_one = SummaryParser("node-1", "ens4", LIST_FORMAT)
    packets = by_batch.parse_many(batch[:7]) + by_batch.parse_many(batch[7:])
    singles = [p for p in map(one_by_one.parse, batch) if p is not None]
    assert [p.as_dict() for p in packets] == [p.as_dict() for p in singles]
    assert by_batch.skipped == one_by_one.skipped and by_batch.file_starts == one_by_one.file_starts
    assert by_batch.parsed == len(packets) and by_batch.parsed + by_batch.skipped_total == len(batch)
    for packet in packets:
        assert 0 <= packet.ts < 1e11 and "\x1b" not in packet.info and packet.seq is None


@given(st.lists(st.text(alphabet="ab\tc\n", max_size=30), max_size=8), st.data())
def test_line_assembler_rebuilds_lines_whatever_the_chunking(parts: list[str], data: st.DataObject) -> None:
    text = "".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assembler = LineAssembler()
    got = [line for chunk in chunks for line in assembler.feed(chunk)] + assembler.flush()
    expected = text.split("\n")
    if expected[-1] == "":
        expected.pop()  # a final newline ends the last line; it does not start another
    assert got == expected


def test_line_assembler_drops_an_endless_line_and_counts_it() -> None:
    assembler = LineAssembler(max_line=10)
    assert assembler.feed("x" * 11) == []
    assert assembler.overlong == 1
    assert assembler.feed("ok\nnext") == ["ok"]
    assert assembler.flush() == ["next"]


def test_a_list_format_line_with_escapes_reaches_the_screen_inert() -> None:
    """A node that is not tshark (or a tshark that did not escape) may print an escape in the info: the
    list format (what a watched stream asks for) strips it as the full format does."""
    parser = SummaryParser("node-1", "ens4", LIST_FORMAT)
    line = "1795682132.5\t1\t74\t10.0.1.15\t45890\t10.105.134.33\t9999\tTCP\t\x1b]0;owned\x07SYN \x1b[2J"
    (packet,) = parser.parse_many([line])
    assert "\x1b" not in packet.info and "\x07" not in packet.info
    assert "SYN" in packet.info and packet.dst == "10.105.134.33" and packet.dport == 9999


def test_a_list_line_packs_the_same_bytes_whatever_its_info_length() -> None:
    """Numbers and info are packed in one call per info length (short infos share a Struct, a long one
    gets its own): every length gives the packet the public constructor builds from the same fields."""
    parser = SummaryParser("node-1", "ens4", LIST_FORMAT)
    infos = ["", "SYN", "57074 → 8080 [ACK] Seq=1 Ack=1", "é" * 1500, "x" * 5000]  # 0 … 5000 bytes
    lines = [
        f"1795682132.5\t{n:5d}\t74\t   10.0.1.15\t45890\t10.0.2.215  \t8080\tTCP\t{info}"
        for n, info in enumerate(infos, start=1)
    ]
    packets = parser.parse_many(lines)
    assert parser.skipped_total == 0, parser.last_skipped
    built = [
        PacketSummary(
            ts=1795682132.5,
            node="node-1",
            interface="ens4",
            number=n,
            src="10.0.1.15",
            dst="10.0.2.215",
            protocol="TCP",
            length=74,
            info=info,
            sport=45890,
            dport=8080,
        )
        for n, info in enumerate(infos, start=1)
    ]
    assert packets == built  # the packed bytes too, not only the fields read back
    assert [p.info for p in packets] == infos


def test_a_port_seen_before_is_still_checked_on_every_line() -> None:
    """Port columns are remembered once parsed: an out-of-range or non-numeric port is skipped with its
    reason each time it comes, and a good port read from memory reads back as written."""
    parser = SummaryParser("node-1", "ens4", LIST_FORMAT)

    def line(n: int, sport: str, dport: str) -> str:
        return f"1795682132.5\t{n}\t74\t10.0.1.15\t{sport}\t10.0.2.215\t{dport}\tTCP\tinfo"

    batch = [line(1, "45890", "8080"), line(2, "70000", "8080"), line(3, "70000", "8080")]
    batch += [line(4, "45890", "80a"), line(5, "45890", "80a"), line(6, "", "8080"), line(7, "45890", "0")]
    packets = parser.parse_many(batch)
    assert [(p.number, p.sport, p.dport) for p in packets] == [
        (1, 45890, 8080),
        (6, None, 8080),
        (7, 45890, 0),
    ]
    assert parser.skipped == {SkipReason.OUT_OF_RANGE: 2, SkipReason.NOT_A_NUMBER: 2}
