"""The full dissection tree of one packet of a pcap/pcapng file, computed off the event loop.

Why not pyshark's packet objects: pyshark reads the same PDML but its XmlLayer copies every
`.//field` of a layer into one flat dict, so the tree is lost — and it cannot be rebuilt from byte
ranges (ip.version and ip.hdr_len cover the same byte and are siblings; eth.addr sits under eth.dst
with the same range). So tshark's PDML is read here directly, keeping the nesting, and the frame's
bytes are read from the file itself. `dissect` never blocks the loop (an asyncio subprocess, then
parsing in a worker thread); `dissect_sync` is for threads and the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Final

from labyrinth_tui.model.dissection import Dissection, DissectionField, DissectionLayer
from labyrinth_tui.probes.capture import VXLAN_PORT

DISSECT_TIMEOUT: Final = 60.0
MAX_FIELD_DEPTH: Final = 64


class DissectError(Exception):
    """The packet could not be dissected; `reason` says why (in tshark's words when it has them)."""

    def __init__(self, path: str, number: int, reason: str) -> None:
        super().__init__(f"packet {number} of {path}: {reason}")
        self.path = path
        self.number = number
        self.reason = reason


def pdml_argv(path: str, number: int, vxlan_port: int = VXLAN_PORT) -> list[str]:
    """tshark reading `path` only as far as packet `number` (-c), printing that one packet as PDML."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"packet numbers start at 1, not {number!r}")
    if not path or path.startswith("-") or "\0" in path:
        raise ValueError(f"not a capture file path: {path!r}")
    return [
        "tshark", "-r", path, "-n", "-d", f"udp.port=={vxlan_port},vxlan",
        "-c", str(number), "-Y", f"frame.number == {number}", "-T", "pdml",
    ]  # fmt: skip


async def dissect(path: str | Path, number: int, *, vxlan_port: int = VXLAN_PORT) -> Dissection:
    """Packet `number` (from 1) of `path`, fully dissected. Safe to await on the UI's loop."""
    name = str(path)
    argv = pdml_argv(name, number, vxlan_port)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError:
        raise DissectError(name, number, "tshark is not installed") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), DISSECT_TIMEOUT)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()  # reap it: nothing left behind
        raise
    return await asyncio.to_thread(_build, name, number, proc.returncode, out, err)


def dissect_sync(path: str | Path, number: int, *, vxlan_port: int = VXLAN_PORT) -> Dissection:
    """The same, blocking: for worker threads and the CLI, never on a running event loop."""
    name = str(path)
    try:
        done = subprocess.run(
            pdml_argv(name, number, vxlan_port), capture_output=True, timeout=DISSECT_TIMEOUT
        )
    except FileNotFoundError:
        raise DissectError(name, number, "tshark is not installed") from None
    return _build(name, number, done.returncode, done.stdout, done.stderr)


def _build(path: str, number: int, status: int | None, out: bytes, err: bytes) -> Dissection:
    layers = pdml_layers(path, number, status, out, err)
    return Dissection(number, layers, read_frame(path, number))


def pdml_layers(
    path: str, number: int, status: int | None, out: bytes, err: bytes
) -> tuple[DissectionLayer, ...]:
    """The layers of the one packet in `pdml_argv`'s output (run here or on a node); DissectError else."""
    message = " ".join(
        line.strip().removeprefix("tshark: ")
        for line in err.decode("utf-8", "replace").splitlines()
        if line.strip() and not line.startswith("Running as user")
    )
    if status != 0:
        raise DissectError(path, number, message or f"tshark exited {status}")
    try:
        root = ET.fromstring(out)
    except ET.ParseError as exc:
        raise DissectError(path, number, f"tshark's PDML did not parse ({exc})") from None
    packets = root.findall("packet")
    if not packets:
        raise DissectError(path, number, f"the file has fewer than {number} packets")
    try:
        return tuple(_layer(proto) for proto in packets[0].findall("proto") if proto.get("name") != "geninfo")
    except DissectError as exc:
        raise DissectError(path, number, exc.reason) from None


def _int(element: ET.Element, name: str) -> int:
    try:
        return int(element.get(name, "0"))
    except ValueError:
        return 0


def _field(element: ET.Element, depth: int = 0) -> DissectionField:
    if depth > MAX_FIELD_DEPTH:  # tshark nests ~10 deep; more is crafted output, not worth a RecursionError
        raise DissectError("the PDML", 0, f"fields nested deeper than {MAX_FIELD_DEPTH}")
    show = element.get("show", "")
    return DissectionField(
        name=element.get("name", ""),
        showname=element.get("showname") or show,
        show=show,
        value=element.get("value", ""),
        pos=_int(element, "pos"),
        size=_int(element, "size"),
        hidden=element.get("hide") == "yes",
        children=tuple(_field(child, depth + 1) for child in element if child.tag in ("field", "proto")),
    )


def _layer(proto: ET.Element) -> DissectionLayer:
    return DissectionLayer(
        name=proto.get("name", ""),
        showname=proto.get("showname") or proto.get("name") or "",
        pos=_int(proto, "pos"),
        size=_int(proto, "size"),
        fields=tuple(_field(child) for child in proto if child.tag in ("field", "proto")),
    )


# --- the frame's bytes, straight from the file -----------------------------------------------------

_PCAP_MAGICS: Final = {
    b"\xd4\xc3\xb2\xa1": "<",  # microseconds, little endian
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",  # nanoseconds
    b"\xa1\xb2\x3c\x4d": ">",
}
_PCAPNG_SHB: Final = 0x0A0D0D0A


def read_frame(path: str, number: int) -> bytes:
    """The captured bytes of packet `number` (from 1) of a pcap or pcapng file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DissectError(path, number, exc.strerror or str(exc)) from None
    return frame_in(data, number, path)


def frame_in(data: bytes, number: int, path: str = "the capture") -> bytes:
    """The captured bytes of packet `number` (from 1) of pcap or pcapng `data`."""
    if data[:4] in _PCAP_MAGICS:
        return _pcap_frame(path, data, number, _PCAP_MAGICS[data[:4]])
    if len(data) >= 12 and int.from_bytes(data[:4], "little") == _PCAPNG_SHB:
        return _pcapng_frame(path, data, number)
    raise DissectError(path, number, "not a pcap or pcapng file (compressed files are not read here)")


def _pcap_frame(path: str, data: bytes, number: int, order: str) -> bytes:
    offset, seen = 24, 0
    record = struct.Struct(order + "IIII")
    while offset + 16 <= len(data):
        _, _, caplen, _ = record.unpack_from(data, offset)
        if offset + 16 + caplen > len(data):
            break  # cut short: the file is still being written, or truncated
        seen += 1
        if seen == number:
            return data[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
    raise DissectError(path, number, f"the file holds only {seen} whole packets")


def _pcapng_frame(path: str, data: bytes, number: int) -> bytes:
    offset, seen, order = 0, 0, "<"
    while offset + 12 <= len(data):
        if int.from_bytes(data[offset : offset + 4], "little") == _PCAPNG_SHB:
            # each section header says its byte order with the magic 0x1A2B3C4D
            order = "<" if data[offset + 8 : offset + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        block_type, length = struct.unpack_from(order + "II", data, offset)
        if length < 12 or offset + length > len(data):
            break
        body = data[offset + 8 : offset + length - 4]
        frame: bytes | None = None
        if block_type == 6 and len(body) >= 20:  # enhanced packet block
            caplen = struct.unpack_from(order + "I", body, 12)[0]
            frame = body[20 : 20 + caplen]
        elif block_type == 3 and len(body) >= 4:  # simple packet block
            frame = body[4 : 4 + struct.unpack_from(order + "I", body, 0)[0]]
        elif block_type == 2 and len(body) >= 20:  # obsolete packet block
            caplen = struct.unpack_from(order + "I", body, 12)[0]
            frame = body[20 : 20 + caplen]
        if frame is not None:
            seen += 1
            if seen == number:
                return frame
        offset += length
    raise DissectError(path, number, f"the file holds only {seen} whole packets")
