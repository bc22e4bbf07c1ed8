"""tshark for one interface: the capture argv, the capture-filter check before a stream starts, recording.

Everything here builds argv lists or reads a finished command's output; running them on a node is
the NodeSession's job (nodes/commands.py quotes them). The line parser is in capture_parse.py, the
readiness canary in capture_ready.py.

Traps measured on tshark 4.0 (Debian 12):
- `-Q` and `-q` suppress every packet line, live or from a file: neither may be used here.
- `dumpcap -d` exits 0 even when the filter is invalid or the interface missing: read its output.
- A live tshark always reads back a pcapng that dumpcap writes (a temp file in /tmp unless `-w`):
  with `-w FILE -P` that file IS the recording, at no extra cost; `-b` makes it a ring of files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from labyrinth_tui.nodes.commands import (
    Section,
    batch_script,
    pipeline,
    validate_capture_filter,
    validate_interface,
    validate_workdir,
)
from labyrinth_tui.probes.capture_format import DEFAULT_FORMAT, LIST_FORMAT, SummaryFormat
from labyrinth_tui.probes.capture_parse import SkipReason, SummaryParser, tcp_flags_text
from labyrinth_tui.probes.capture_swap import swap_argv
from labyrinth_tui.probes.discovery import split_sections

__all__ = [
    "DEFAULT_FORMAT",
    "LIST_FORMAT",
    "SNAPLEN",
    "VXLAN_PORT",
    "CaptureCheckFailed",
    "CaptureFilterInvalid",
    "CaptureInterfaceMissing",
    "CaptureToolMissing",
    "FilterCheck",
    "Recording",
    "Relay",
    "SkipReason",
    "SummaryFormat",
    "SummaryParser",
    "capture_argv",
    "filter_check_argv",
    "interpret_filter_check",
    "interpret_stream_setup",
    "merge_recording_argv",
    "read_argv",
    "stream_setup_script",
    "tcp_flags_text",
]

VXLAN_PORT: Final = 8472  # Cilium's (and the Linux default's predecessor) VXLAN port; tshark only knows 4789


# tcpdump --immediate-mode uses libpcap's TPACKET_V2 ring: one fixed slot per packet, sized by the
# snapshot length, capped at the MTU — except on interfaces with offloads (veth, most NICs), where the
# cap is 64 KiB because GSO/GRO packets can be that big. With tcpdump's default snaplen (262144) a 32 MB
# buffer is then only 512 slots: 25 ms at 20k packets/s, and the kernel drops (measured here: ~5k
# drops whenever tshark paused). 2048 bytes keeps every 1500-MTU frame whole, VXLAN headers included,
# and gives ~16k slots (0.8 s at 20k packets/s); only GSO/GRO-merged packets are cut in a recording
# (Wireshark marks them "Packet size limited during capture"); their headers and summary are intact.
SNAPLEN: Final = 2048


def _decode_as(vxlan_port: int) -> list[str]:
    if isinstance(vxlan_port, bool) or not isinstance(vxlan_port, int) or not 0 < vxlan_port < 65536:
        raise ValueError(f"VXLAN port must be 1-65535, not {vxlan_port!r}")
    return ["-d", f"udp.port=={vxlan_port},vxlan"]


def _count(count: int | None) -> list[str]:
    if count is None:
        return []
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"packet count must be a positive integer, not {count!r}")
    return ["-c", str(count)]


@dataclass(frozen=True, slots=True)
class Relay:
    """The tcpdump engine's relay to tshark (probes/capture_swap.py): each packet to `<prefix>-NNNN.pcap`
    as it passes ("" records nothing), a fresh tshark every `every` packets at a packet boundary;
    `keep` every run's file, or only the current run's (bounded disk)."""

    prefix: str
    every: int = 250_000
    keep: bool = True
    canary: bytes = b""  # a readiness canary's frame: the relay sends it itself once tcpdump listens

    def argv(self, tshark: list[str], capture: list[str] | None = None) -> list[str]:
        """The relay feeding `tshark`; with `capture` (tcpdump) it starts it and reports its kernel drops."""
        return swap_argv(self.prefix, self.every, self.keep, tshark, capture, self.canary)


@dataclass(frozen=True, slots=True)
class Recording:
    """Keep what the stream shows on the node: `path`, or a ring of `files` × `file_kb` files.

    For engine "tshark" only: its `-w` pcapng (buffered: complete only once tshark ends), or a ring.
    The tcpdump engine records through its `Relay` instead (each packet on disk as it passes).

    With a ring, tshark names the files `<stem>_<5-digit index>_<YYYYmmddHHMMSS><suffix>` and prints
    `File: "<name>"` on stderr as it opens each; only the newest `files` remain on disk. Fetch them in
    order and join them with `merge_recording_argv` (locally) for one pcapng.

    Measured on tshark 4.0: frame numbers restart at 1 in every ring file (SummaryParser keeps the
    stream's numbers going and notes `file_starts`), but tshark's memory does NOT reset — its RSS
    grew ~0.8 KB/packet across files (0.8 → 1.76 GB over 2.3M packets): bounding it means restarting
    tshark. Keep `files` generous: under load tshark reads behind dumpcap, and when dumpcap deletes
    a file tshark has not read yet, tshark exits ("The file … doesn't exist").
    """

    path: str
    files: int | None = None
    file_kb: int = 65_536

    def _checked(self) -> str:
        if not self.path.startswith("/") or "\0" in self.path or self.path.endswith("/"):
            raise ValueError(f"a recording needs an absolute file path on the node, not {self.path!r}")
        return self.path

    def argv(self) -> list[str]:
        """tshark's options that record (engine "tshark"): pcapng, or a ring of files."""
        argv = ["-w", self._checked(), "-P"]  # -P: print the summary lines while writing the file
        if self.files is not None:
            if not 2 <= self.files <= 1000 or not 1 <= self.file_kb <= 2_000_000:
                raise ValueError("a recording ring keeps 2-1000 files of 1 kB-2 GB each")
            argv += ["-b", f"filesize:{self.file_kb}", "-b", f"files:{self.files}"]
        return argv


def capture_argv(
    interface: str,
    capture_filter: str = "",
    *,
    fmt: SummaryFormat = DEFAULT_FORMAT,
    vxlan_port: int = VXLAN_PORT,
    count: int | None = None,
    buffer_mb: int = 16,
    buffer_kb: int | None = None,
    recording: Recording | None = None,
    engine: str = "tcpdump",
    snaplen: int = SNAPLEN,
    relay: Relay | None = None,
) -> list[str]:
    """One `fmt` line per packet on stdout, flushed per packet, from interface IFACE on the node.

    engine "tcpdump" (the default): `tcpdump --immediate-mode -w - | tshark -r - -l …`. Measured here at
    5k packets/s: median capture→line 0.6 ms, against ~510 ms for `tshark -i` (dumpcap hands packets over
    in 250 ms blocks and tshark re-reads its file every 100 ms). With `relay`, tcpdump's packets go
    through the node-side relay (recorded, tshark swapped now and then); see `Relay`.
    engine "tshark": plain `tshark -i`.

    `capture_filter` is BPF (check it first with `filter_check_argv`); for a readiness canary pass
    `capture_ready.canary_filter(user_filter)`. `buffer_mb` is the kernel buffer (2 MB drops bursts at
    ~20k packets/s); `buffer_kb`, when given, sets it in KiB instead (tcpdump engine; tests make the
    kernel drop with 1). `snaplen` bytes of each packet are kept (tcpdump engine; see SNAPLEN).
    """
    iface = validate_interface(interface)
    if not 1 <= buffer_mb <= 1024:
        raise ValueError(f"capture buffer must be 1-1024 MB, not {buffer_mb!r}")
    if buffer_kb is not None and (isinstance(buffer_kb, bool) or not 1 <= buffer_kb <= 1024 * 1024):
        raise ValueError(f"capture buffer must be 1-1048576 KiB, not {buffer_kb!r}")
    if isinstance(snaplen, bool) or not isinstance(snaplen, int) or not 64 <= snaplen <= 262_144:
        raise ValueError(f"snapshot length must be 64-262144 bytes, not {snaplen!r}")
    bpf = validate_capture_filter(capture_filter)
    decode = _decode_as(vxlan_port) + fmt.tshark_options() + _count(count)
    if engine == "tcpdump":
        capture = [
            "tcpdump",
            "-i",
            iface,
            "-B",
            str(buffer_mb * 1024 if buffer_kb is None else buffer_kb),
            "-s",
            str(snaplen),
            "--immediate-mode",
            "-U",
            "-n",
            "-w",
            "-",
        ]
        capture += [bpf] if bpf else []
        reader = ["tshark", "-r", "-", "-l", "-n", *decode]
        if recording is not None:
            raise ValueError("the tcpdump engine records through a Relay (files written as packets pass)")
        # with a relay, the relay starts tcpdump itself: it asks it for its kernel drops (SIGUSR1)
        return pipeline(capture, reader) if relay is None else relay.argv(reader, capture)
    if engine != "tshark":
        raise ValueError(f"capture engine {engine!r}: tcpdump or tshark")
    if relay is not None:
        raise ValueError("the relay is the tcpdump engine's")
    keep = recording.argv() if recording is not None else []
    argv = ["tshark", "-i", iface, "-l", "-n", "-B", str(buffer_mb), *decode, *keep]
    if bpf:
        argv += ["-f", capture_filter]
    return argv


def read_argv(
    path: str, *, fmt: SummaryFormat = DEFAULT_FORMAT, vxlan_port: int = VXLAN_PORT, count: int | None = None
) -> list[str]:
    """The same lines as `capture_argv`, read from a pcap/pcapng file (replays, benches, tests)."""
    if not path or path.startswith("-") or "\0" in path:
        raise ValueError(f"not a capture file path: {path!r}")
    return ["tshark", "-r", path, "-n", *_decode_as(vxlan_port), *fmt.tshark_options(), *_count(count)]


def merge_recording_argv(parts: Sequence[str], out: str) -> list[str]:
    """Join a recording ring's files, oldest first, into one pcapng (`mergecap -a`: concatenate)."""
    if not parts:
        raise ValueError("no recording files to join")
    return ["mergecap", "-a", "-F", "pcapng", "-w", out, *parts]


# --- capture filter check --------------------------------------------------------------------------


class CaptureCheckFailed(Exception):
    """The capture cannot start; `reason` is tshark's (dumpcap's) own words."""

    def __init__(self, interface: str, capture_filter: str, reason: str) -> None:
        super().__init__(reason)
        self.interface = interface
        self.capture_filter = capture_filter
        self.reason = reason


class CaptureFilterInvalid(CaptureCheckFailed):
    """The BPF filter does not compile for this interface's link type."""


class CaptureInterfaceMissing(CaptureCheckFailed):
    """No such interface where the check ran (wrong node or netns, or it vanished)."""


class CaptureToolMissing(CaptureCheckFailed):
    """dumpcap (so tshark) is not installed on the node."""


@dataclass(frozen=True, slots=True)
class FilterCheck:
    """A filter that compiles: `instructions` BPF instructions (0 when there is no filter)."""

    interface: str
    capture_filter: str
    instructions: int


def filter_check_argv(interface: str, capture_filter: str) -> list[str]:
    """`dumpcap -d`: compile the filter for the interface's link type and print it; captures nothing.

    Run it where the stream will run (same node, same netns), as the same user: dumpcap opens the
    interface to learn its link type, so a missing interface is caught here too.
    """
    argv = ["dumpcap", "-d", "-i", validate_interface(interface)]
    if validate_capture_filter(capture_filter):
        argv += ["-f", capture_filter]
    return argv


_NOISE: Final = (
    "Capturing on ",
    'Running as user "root"',
    "See the User's Guide",
    "(Are you sure you have the right interface?)",
)


def _message(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines()]
    kept = [line.removeprefix("dumpcap: ") for line in lines if line and not line.startswith(_NOISE)]
    return " ".join(kept)


def interpret_filter_check(
    interface: str, capture_filter: str, exit_status: int | None, stdout: str, stderr: str
) -> FilterCheck:
    """What `filter_check_argv`'s run means: a FilterCheck, or a CaptureCheckFailed in tshark's words."""
    message = _message(stderr)
    if exit_status in (126, 127) or "dumpcap: not found" in stderr or "dumpcap: command not found" in stderr:
        raise CaptureToolMissing(interface, capture_filter, message or "dumpcap is not installed on the node")
    if "Invalid capture filter" in stderr or "isn't a valid capture filter" in stderr:
        raise CaptureFilterInvalid(interface, capture_filter, message)
    if "There is no device named" in stderr or "No such device" in stderr:
        raise CaptureInterfaceMissing(interface, capture_filter, message)
    instructions = sum(1 for line in stdout.splitlines() if line.startswith("("))
    if capture_filter and instructions == 0:
        # exit status 0 and no program: something else stopped it (permissions, a dumpcap we do not know)
        raise CaptureCheckFailed(
            interface, capture_filter, message or f"dumpcap exited {exit_status} silently"
        )
    if exit_status not in (0, None):
        raise CaptureCheckFailed(interface, capture_filter, message or f"dumpcap exited {exit_status}")
    return FilterCheck(interface, capture_filter, instructions)


def stream_setup_script(marker: str, interface: str, capture_filter: str, workdir: str) -> str:
    """The filter check and the stream's work folder in ONE round trip (feed it to `sh -s`): each SSH
    command costs sshd a session, a fork and a shell, 0.1-0.3 s here with six streams starting."""
    check = Section("check", tuple(filter_check_argv(interface, capture_filter)), mark_stderr=True)
    folder = Section(
        "workdir", ("mkdir", "-m", "700", "-p", "--", validate_workdir(workdir)), mark_stderr=True
    )
    return batch_script(marker, [check, folder])


def interpret_stream_setup(
    interface: str, capture_filter: str, marker: str, exit_status: int | None, stdout: str, stderr: str
) -> str:
    """What `stream_setup_script`'s run means: "" when the stream may start, else why its folder could
    not be made; CaptureCheckFailed (in tshark's words) when the filter or the interface is wrong."""
    out, err = split_sections(stdout, marker).host, split_sections(stderr, marker).host
    check = out.get("check")
    if check is None or check.status is None:  # the batch never got there (sudo refused, no sh)
        interpret_filter_check(interface, capture_filter, exit_status or -1, stdout, stderr)
        return f"the node did not check the capture filter (exit {exit_status})"
    said = err.get("check")
    interpret_filter_check(interface, capture_filter, check.status, check.text, said.text if said else "")
    folder, words = out.get("workdir"), err.get("workdir")
    if folder is None or folder.status != 0:
        why = (words.text.strip() if words else "") or f"exit {folder.status if folder else exit_status}"
        return f"cannot make the capture's folder on the node: {why}"
    return ""
