"""What we ask tshark and dumpcap to run, and the readiness canary's pure half (live: see integration)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.commands import UnsafeArgument, shell_line
from labyrinth_tui.probes.capture import (
    CaptureFilterInvalid,
    CaptureToolMissing,
    Recording,
    Relay,
    capture_argv,
    filter_check_argv,
    interpret_filter_check,
    merge_recording_argv,
    read_argv,
)
from labyrinth_tui.probes.capture_parse import SummaryParser
from labyrinth_tui.probes.capture_ready import (
    CANARY_DST,
    Canary,
    CanaryNotSent,
    CanaryWatch,
    canary_filter,
    interpret_canary_send,
)
from tests.conftest import needs_root
from tests.fakes.pcapgen import write_frames
from tests.snapshot.bundles import INVALID_FILTER


def test_capture_argv_streams_one_line_per_packet_decoding_vxlan() -> None:
    argv = capture_argv("lxc1ba60d50596c", "udp port 53", engine="tshark")
    assert argv[:6] == ["tshark", "-i", "lxc1ba60d50596c", "-l", "-n", "-B"]
    assert "udp.port==8472,vxlan" in argv and "tabs" in argv
    assert argv[-2:] == ["-f", "udp port 53"]
    # -Q and -q silence every packet line in tshark 4.0: a stream must never carry them
    assert "-Q" not in argv and "-q" not in argv
    assert "-f" not in capture_argv("ens4", engine="tshark")  # no filter, no -f


def test_capture_and_file_reading_print_the_same_columns() -> None:
    live, offline = capture_argv("ens4", engine="tshark"), read_argv("/tmp/x.pcapng")
    assert live[live.index("-t") :] == offline[offline.index("-t") :]


@pytest.mark.parametrize("interface", ["eth0; reboot", "-i", "", "a" * 16, "ens4\n"])
def test_a_bad_interface_name_never_reaches_a_command(interface: str) -> None:
    with pytest.raises(UnsafeArgument):
        capture_argv(interface)
    with pytest.raises(UnsafeArgument):
        filter_check_argv(interface, "tcp")


def test_a_filter_with_control_characters_is_refused() -> None:
    with pytest.raises(UnsafeArgument, match="printable ASCII"):
        capture_argv("ens4", "tcp\nport 80")


def test_recording_writes_the_stream_as_a_pcapng_ring_while_printing() -> None:
    argv = capture_argv(
        "ens4", recording=Recording("/var/tmp/labyrinth/ens4.pcapng", files=4, file_kb=1024), engine="tshark"
    )
    i = argv.index("-w")
    assert argv[i : i + 7] == [
        "-w",
        "/var/tmp/labyrinth/ens4.pcapng",
        "-P",
        "-b",
        "filesize:1024",
        "-b",
        "files:4",
    ]
    with pytest.raises(ValueError, match="absolute"):
        capture_argv("ens4", recording=Recording("relative.pcapng"), engine="tshark")
    with pytest.raises(ValueError, match="2-1000 files"):
        capture_argv("ens4", recording=Recording("/tmp/r.pcapng", files=1), engine="tshark")
    with pytest.raises(ValueError, match="Relay"):  # the tcpdump engine records through its relay
        capture_argv("ens4", recording=Recording("/tmp/r.pcapng"))
    assert merge_recording_argv(["/a_00001.pcapng", "/a_00002.pcapng"], "/out.pcapng")[:6] == [
        "mergecap", "-a", "-F", "pcapng", "-w", "/out.pcapng",
    ]  # fmt: skip


def test_counts_and_ports_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        capture_argv("ens4", count=0)
    with pytest.raises(ValueError, match="VXLAN port"):
        capture_argv("ens4", vxlan_port=70000)
    assert capture_argv("ens4", count=5, engine="tshark")[-2:] == ["-c", "5"]


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
def test_dumpcap_missing_on_the_node_is_named_as_such(tmp_path: Path) -> None:
    # how a node without Wireshark answers the exec request: its shell cannot find dumpcap
    argv = filter_check_argv("ens4", "tcp port 80")
    sh = shutil.which("sh")
    assert sh is not None
    no_tools = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run([sh, "-c", shell_line(argv)], capture_output=True, text=True, env=no_tools)
    with pytest.raises(CaptureToolMissing) as failed:
        interpret_filter_check("ens4", "tcp port 80", done.returncode, done.stdout, done.stderr)
    assert "dumpcap" in failed.value.reason and "not found" in failed.value.reason


# --- the readiness canary's pure half ----------------------------------------------------------------


def test_canary_filter_lets_canaries_through_any_user_filter() -> None:
    assert canary_filter("") == ""
    assert canary_filter("tcp port 80") == f"(tcp port 80) or (ether dst {CANARY_DST})"


def test_canary_frame_is_a_minimum_ethernet_frame_to_nobody() -> None:
    canary = Canary(bytes.fromhex("0123456789"))
    frame = canary.frame()
    assert len(frame) == 60
    assert frame[:6] == bytes.fromhex(CANARY_DST.replace(":", ""))
    assert frame[6:12] == bytes.fromhex("020123456789") and canary.src_mac == "02:01:23:45:67:89"
    assert frame[12:14] == b"\x88\xb5"  # IEEE 802 Local Experimental EtherType 1
    assert frame[0] & 0x01 == 0 and frame[0] & 0x02  # unicast, locally administered: no real NIC has it
    argv = canary.send_argv("ens4", count=3, interval=0.05)
    assert argv[:2] == ["python3", "-c"] and argv[3:] == ["ens4", frame.hex(), "3", "0.05", ""]
    with pytest.raises(ValueError):
        Canary(b"four")


def test_tshark_shows_the_canary_and_the_watch_takes_it_out(tmp_path: Path) -> None:
    """The canary as tshark prints it: recognised, removed from the stream, ready only on our own."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    from tests.fakes.pcapgen import Frame, Truth, tcp_flow

    ours, theirs = Canary.new(), Canary.new()
    flow = tcp_flow()
    dummy = Truth("canary", "", "", 0, 0, 0)
    items = [flow[0], Frame(flow[0].ts + 0.001, theirs.frame(), dummy), flow[1]]
    items += [Frame(flow[1].ts + 0.001, ours.frame(), dummy), flow[2]]
    pcap = tmp_path / "canaries.pcap"
    write_frames(pcap, items)
    lines = subprocess.run(
        read_argv(str(pcap)), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    packets = SummaryParser("node-1", "ens4").parse_many(lines)
    assert len(packets) == 5
    assert packets[3].dst == CANARY_DST and packets[3].protocol == "0x88b5"

    watch = CanaryWatch(ours)
    assert watch.take(packets[:3]) == [packets[0], packets[2]]  # the other stream's canary goes too…
    assert not watch.ready  # …but does not make this stream ready
    assert watch.take(packets[3:]) == [packets[4]]
    assert watch.ready and watch.ready_at == packets[3].ts and watch.removed == 2


def test_canary_send_failures_say_why() -> None:
    interpret_canary_send("ens4", 0, "")
    with pytest.raises(CanaryNotSent, match="python3 is not installed"):
        interpret_canary_send("ens4", 127, "sh: 1: python3: not found")
    with pytest.raises(CanaryNotSent, match="Network is down"):
        interpret_canary_send("ens4", 1, "canary not sent on ens4: Network is down\n")


def test_is_mine_tells_streams_apart() -> None:
    ours, theirs = Canary.new(), Canary.new()
    seen = PacketSummary(1.0, "n", "ens4", 1, theirs.src_mac, CANARY_DST, "0x88b5", 60, "")
    assert theirs.is_mine(seen) and not ours.is_mine(seen)


def test_default_engine_pipes_tcpdump_immediate_mode_into_tshark() -> None:
    import shlex

    canary = Canary(bytes.fromhex("0123456789"))
    relay = Relay("/tmp/labyrinth-cap-0a/run", every=1000, keep=False, canary=canary.frame())
    argv = capture_argv("lxc1ba60d50596c", "udp port 53", relay=relay, buffer_kb=1)
    # python3 -c RELAY prefix every keep N canary tcpdump(N words)… tshark…: the relay starts tcpdump
    # itself (to ask it for its kernel drops, and to send the canary once it listens), records packets
    # as they pass, swaps tshark now and then
    assert argv[:2] == ["python3", "-c"] and argv[3:6] == ["/tmp/labyrinth-cap-0a/run", "1000", "0"]
    ncap, frame = int(argv[6]), argv[7]
    assert frame == canary.frame().hex()
    first, reader = argv[8 : 8 + ncap], argv[8 + ncap :]
    assert first[:3] == ["tcpdump", "-i", "lxc1ba60d50596c"] and "--immediate-mode" in first
    assert first[first.index("-B") + 1] == "1"  # KiB: a test-only buffer that makes the kernel drop
    assert first[-3:] == ["-w", "-", "udp port 53"]  # the filter travels as one argument
    assert reader[:5] == ["tshark", "-r", "-", "-l", "-n"]
    assert "udp.port==8472,vxlan" in reader and "-w" not in reader
    plain = shlex.split(capture_argv("lxc1ba60d50596c")[2])
    assert plain.count("|") == 1 and plain[plain.index("|") + 1] == "tshark"
    with pytest.raises(ValueError, match="tcpdump or tshark"):
        capture_argv("ens4", engine="pcap")
    with pytest.raises(ValueError, match="1-1048576 KiB"):
        capture_argv("ens4", buffer_kb=0)


def test_tcpdump_keeps_2_kb_of_each_packet_so_its_kernel_ring_has_room() -> None:
    import shlex

    argv = capture_argv("lxc1ba60d50596c", buffer_mb=32)
    first = shlex.split(argv[2].split(" | ")[0])
    # a 32 MB ring of 64 KiB slots (the default snaplen on an offloading veth) is 512 packets
    assert first[first.index("-s") + 1] == "2048" and first[first.index("-B") + 1] == "32768"
    assert "-s" in shlex.split(capture_argv("ens4", snaplen=262_144)[2].split(" | ")[0])
    for bad in (0, 63, 262_145, True):
        with pytest.raises(ValueError, match="snapshot length"):
            capture_argv("ens4", snaplen=bad)


@needs_root
def test_the_snapshots_invalid_filter_text_is_what_dumpcap_really_says() -> None:
    # in a network namespace of its own (`unshare -n`; its lo is down, "any" opens): none of ours is touched
    argv = ["unshare", "-n", *filter_check_argv("any", "port eighty")]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    with pytest.raises(CaptureFilterInvalid) as refused:
        interpret_filter_check("any", "port eighty", done.returncode, done.stdout, done.stderr)
    assert INVALID_FILTER in refused.value.reason
