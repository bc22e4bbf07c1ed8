"""One packet's full dissection tree (nested, with shownames) and bytes, off the event loop."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from labyrinth_tui.probes.dissect import DissectError, dissect, dissect_sync, read_frame
from tests.fakes.pcapgen import NODE1, POD1, POD2, VNI, Frame, dns_walk, encapsulate, tcp_flow, write_frames

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make setup)")


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Frame]]:
    """The same packets as pcap and as pcapng: a plain flow, its SYN through VXLAN, a DNS walk."""
    flow = tcp_flow()
    written = [*flow, encapsulate(flow[0], delay=1.0), *dns_walk()]
    folder = tmp_path_factory.mktemp("dissect")
    pcap, pcapng = folder / "hops.pcap", folder / "hops.pcapng"
    write_frames(pcap, written)
    subprocess.run(
        ["tshark", "-r", str(pcap), "-F", "pcapng", "-w", str(pcapng)], check=True, capture_output=True
    )
    return pcap, pcapng, written


def test_a_syn_shows_its_layers_and_its_flags_tree(capture: tuple[Path, Path, list[Frame]]) -> None:
    _, pcapng, written = capture
    syn = dissect_sync(pcapng, 1)
    assert syn.layer_names == ("frame", "eth", "ip", "tcp")
    ip = syn.layer("ip")
    assert ip is not None and ip.showname == f"Internet Protocol Version 4, Src: {POD1}, Dst: {POD2}"
    tcp = syn.layer("tcp")
    assert tcp is not None and tcp.showname.startswith("Transmission Control Protocol, Src Port: ")
    flags = syn.find("tcp.flags")
    assert flags is not None and flags.showname == "Flags: 0x002 (SYN)"
    syn_bit = next(
        f for f in flags.children if f.name == "tcp.flags.syn"
    )  # nested under Flags, as in Wireshark
    assert syn_bit.showname.endswith("= Syn: Set")
    seq_raw = syn.find("tcp.seq_raw")
    assert seq_raw is not None and int(seq_raw.show) == written[0].truth.seq
    assert syn.data == written[0].data
    assert syn.hex_lines()[0].startswith("0000  " + " ".join(f"{b:02x}" for b in written[0].data[:8]))


def test_siblings_with_the_same_bytes_stay_siblings(capture: tuple[Path, Path, list[Frame]]) -> None:
    """ip.version and ip.hdr_len share a byte: a flat field list (pyshark's) cannot tell they are siblings."""
    _, pcapng, _ = capture
    ip = dissect_sync(pcapng, 1).layer("ip")
    assert ip is not None
    top = [f.name for f in ip.fields]
    assert top[:2] == ["ip.version", "ip.hdr_len"]
    dsfield = ip.find("ip.dsfield")
    assert dsfield is not None and [c.name for c in dsfield.children] == ["ip.dsfield.dscp", "ip.dsfield.ecn"]


def test_vxlan_packet_shows_outer_and_inner_layers(capture: tuple[Path, Path, list[Frame]]) -> None:
    pcap, _, written = capture
    d = dissect_sync(pcap, 11)  # the SYN again, as ens4 carries it
    assert d.layer_names == ("frame", "eth", "ip", "udp", "vxlan", "eth", "ip", "tcp")
    outer, inner = d.layer("ip", 0), d.layer("ip", 1)
    assert outer is not None and f"Src: {NODE1}" in outer.showname
    assert inner is not None and f"Src: {POD1}, Dst: {POD2}" in inner.showname
    vni = d.find("vxlan.vni")
    assert vni is not None and vni.show == str(VNI)
    assert d.data == written[10].data


def test_dns_answer_tree(capture: tuple[Path, Path, list[Frame]]) -> None:
    pcap, _, written = capture
    number = next(i for i, f in enumerate(written, 1) if f.truth.kind == "dns" and f.truth.rcode == 3)
    d = dissect_sync(pcap, number)
    assert d.layer_names[-2:] == ("udp", "dns")
    rcode = d.find("dns.flags.rcode")
    assert rcode is not None and rcode.show == "3" and "No such name" in rcode.showname


async def test_dissect_runs_inside_a_running_loop_without_blocking_it(
    capture: tuple[Path, Path, list[Frame]],
) -> None:
    _, pcapng, _ = capture
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)  # why: a heartbeat that only advances while the loop is free

    beat = asyncio.create_task(ticker())
    try:
        both = await asyncio.gather(dissect(pcapng, 2), asyncio.to_thread(dissect_sync, pcapng, 3))
    finally:
        beat.cancel()
    syn_ack_flags = both[0].find("tcp.flags")
    assert syn_ack_flags is not None and syn_ack_flags.showname == "Flags: 0x012 (SYN, ACK)"
    assert both[1].number == 3
    assert ticks > 5  # the loop kept running while tshark worked


def test_bad_requests_are_clear_errors(capture: tuple[Path, Path, list[Frame]], tmp_path: Path) -> None:
    pcap, pcapng, written = capture
    with pytest.raises(DissectError, match=f"fewer than {len(written) + 1} packets"):
        dissect_sync(pcapng, len(written) + 1)
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    with pytest.raises(DissectError, match="isn't a capture file"):
        dissect_sync(text, 1)
    with pytest.raises(ValueError, match="start at 1"):
        dissect_sync(pcap, 0)
    truncated = tmp_path / "cut.pcap"
    two_and_a_bit = 24 + 16 + len(written[0].data) + 16 + len(written[1].data) + 20
    truncated.write_bytes(pcap.read_bytes()[:two_and_a_bit])
    assert read_frame(str(truncated), 2) == written[1].data
    with pytest.raises(DissectError, match="only 2 whole packets"):
        read_frame(str(truncated), 3)


def test_frames_read_the_same_from_pcap_and_pcapng(capture: tuple[Path, Path, list[Frame]]) -> None:
    pcap, pcapng, written = capture
    for number, frame in enumerate(written, 1):
        assert read_frame(str(pcap), number) == read_frame(str(pcapng), number) == frame.data
