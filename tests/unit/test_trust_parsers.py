"""Readers of what nodes print (ip -j, bpftool -j, iptables-save, tshark fields, PDML, pcap): any text in,
the probe's own typed error (or a skipped line) out — never another exception."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labyrinth_tui.probes.capture_format import DEFAULT_FORMAT
from labyrinth_tui.probes.capture_parse import SummaryParser
from labyrinth_tui.probes.dissect import DissectError, frame_in, pdml_layers
from labyrinth_tui.probes.evidence import (
    EvidenceParseError,
    parse_bpftool_link,
    parse_bpftool_net,
    parse_iptables_save,
)
from labyrinth_tui.probes.iproute import (
    DiscoveryError,
    load_json_values,
    parse_interfaces,
    parse_netns_ids,
    parse_netns_inodes,
    parse_ps,
    parse_routes,
)
from tests.fakes import DATA
from tests.fakes.fuzz import FUZZ_EXAMPLES

fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
SAVE = (DATA / "iptables_save_nat_after.txt").read_text()
SAVE_LINES = SAVE.splitlines()

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(["veth", "vxlan", "tcx/ingress", "tc", "xdp", "lo", "default", "eth0"])
)
keys = st.sampled_from(
    ["ifname", "ifindex", "link", "link_index", "linkinfo", "info_kind", "info_data", "id", "port",
     "addr_info", "local", "prefixlen", "dst", "metrics", "mtu", "name", "tc", "xdp", "kind", "devname",
     "prog_id", "type", "attach_type", "x"]
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
# what a broken or hostile node could print instead: cut, deep, huge numbers, other scripts' digits
odd_text = st.text() | st.sampled_from(
    ["[" * 5000, '{"a":' * 3000, "[" + "9" * 5000 + "]", "\r\n\x1c\x85", "٣"]
)


def dumped(value: object, cut: int) -> str:
    text = json.dumps(value)
    return text if cut == 0 else text[:-cut]


@fuzz
@given(json_values | st.lists(json_values), st.integers(0, 3))
def test_ip_json_readers_give_problems_or_a_discovery_error(value: object, cut: int) -> None:
    text = dumped(value, cut)
    for parse in (parse_interfaces, parse_routes, parse_netns_ids, lambda t: load_json_values(t, "ip -b")):
        try:
            parse(text)
        except DiscoveryError as exc:
            assert "\n" not in str(exc)


@fuzz
@given(odd_text)
def test_ip_readers_take_any_text(text: str) -> None:
    for parse in (parse_interfaces, parse_routes, parse_netns_ids):
        with contextlib.suppress(DiscoveryError):
            parse(text)
    parse_netns_inodes(text)
    parse_ps(text)


@fuzz
@given(json_values | st.lists(json_values) | odd_text, st.integers(0, 3))
def test_bpftool_readers_give_attachments_or_an_evidence_error(value: object, cut: int) -> None:
    text = value if isinstance(value, str) else dumped(value, cut)
    for parse in (parse_bpftool_net, parse_bpftool_link):
        try:
            parse(text)
        except EvidenceParseError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 400


@fuzz
@given(
    st.integers(0, len(SAVE_LINES) - 1),
    st.text(alphabet=st.sampled_from("[]:0123456789٣ -A*\"'#\\\rCOMMITnat\x1c"), max_size=40) | odd_text,
    st.booleans(),
)
def test_iptables_save_gives_counters_or_an_evidence_error(at: int, junk: str, replace: bool) -> None:
    lines = list(SAVE_LINES)
    lines[at : at + int(replace)] = [junk]
    try:
        parse_iptables_save("\n".join(lines))
    except EvidenceParseError as exc:
        assert "\n" not in str(exc)


def test_iptables_counters_of_five_thousand_digits_are_a_parse_error() -> None:
    with pytest.raises(EvidenceParseError, match="not a chain header"):
        parse_iptables_save(f"*nat\n:PREROUTING ACCEPT [{'9' * 5000}:0]\nCOMMIT\n")


@fuzz
@given(st.lists(odd_text | st.text(alphabet="0123456789.\t,abcdefx:-", max_size=120), max_size=5))
def test_tshark_lines_are_packets_or_counted_skips(lines: list[str]) -> None:
    parser = SummaryParser("node-1", "ens4", DEFAULT_FORMAT)
    packets = parser.parse_many(lines)
    assert len(packets) + parser.skipped_total == len(lines)


@fuzz
@given(
    st.sampled_from(["", "<pdml><packet>", '<pdml><packet><proto name="ip" pos="x">']),
    st.text(max_size=60) | st.just('<field name="a">' * 2000),
)
def test_pdml_gives_layers_or_a_dissect_error(head: str, body: str) -> None:
    try:
        pdml_layers("cap.pcap", 1, 0, (head + body).encode("utf-8", "surrogatepass"), b"")
    except DissectError as exc:
        assert exc.path == "cap.pcap"


def test_pdml_nested_beyond_reason_is_one_dissect_error() -> None:
    deep = '<pdml><packet><proto name="ip">' + '<field name="f">' * 5000 + "</field>" * 5000 + "</proto>"
    with pytest.raises(DissectError, match="nested deeper than 64"):
        pdml_layers("cap.pcap", 1, 0, (deep + "</packet></pdml>").encode(), b"")


@fuzz
@given(
    st.sampled_from([b"", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\n\r\r\n"]),
    st.binary(max_size=200),
    st.integers(1, 5),
)
def test_capture_bytes_give_a_frame_or_a_dissect_error(magic: bytes, rest: bytes, number: int) -> None:
    with contextlib.suppress(DissectError):
        frame_in(magic + rest, number)
