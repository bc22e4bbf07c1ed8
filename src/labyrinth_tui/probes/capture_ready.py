"""Readiness: a stream counts as capturing only once its own canary frame has come back through tshark.

tshark says "Capturing on …" before packets are really captured (docs/lab-facts.md: the first ~1 ms–1 s can
be missed), so that line proves nothing. Instead, once tshark runs, the session sends a canary frame
onto the very interface being captured and waits until the parsed stream contains it:

1. `canary = Canary.new()`; start tshark with `capture_argv(iface, canary_filter(user_filter))` so
   the canary passes whatever filter the user chose (check that filter first: `filter_check_argv`).
2. Run `canary.send_argv(iface)` on the node, in the interface's netns (python3, AF_PACKET, root):
   it sends up to `count` canaries `interval` s apart and exits; `interpret_canary_send` reads its end.
3. Feed every parsed batch through `watch = CanaryWatch(canary)`: `watch.take(batch)` removes every
   canary (ours and other streams' — a bridge floods them to every port) and `watch.ready` turns
   True at ours. Only then is the stream CAPTURING; if the sender ends first, it is FAILED with
   "no packets visible on IFACE".

The frame: destination 02:6c:61:62:79:72 (locally administered, "labyr"), source 02 + the stream's
5-byte token, EtherType 0x88B5 (IEEE 802 "Local Experimental"): no host accepts it, a veth peer or
a VXLAN device drops it (no such MAC), and tshark shows it as src/dst MAC, protocol "0x88b5".
It needs an Ethernet interface (veth, vxlan, bridge, ens4); on an L3 device (tun, wireguard)
`canary_filter` does not compile there and readiness cannot be proven this way.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.commands import validate_interface

CANARY_DST: Final = "02:6c:61:62:79:72"
CANARY_ETHERTYPE: Final = 0x88B5
CANARY_PAYLOAD: Final = b"labyrinth readiness canary"

# argv[1] interface, argv[2] frame hex, argv[3] count, argv[4] interval, argv[5] (may be "") a file whose
# existence means "recorded, stop sending"; a clean one-line error on failure
_SEND_SCRIPT: Final = """\
import os, socket, sys, time
iface, frame, count, interval = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
stop = sys.argv[5] if len(sys.argv) > 5 else ""
try:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for i in range(count):
        if stop and os.path.exists(stop):
            break
        s.send(frame)
        if i + 1 < count:
            time.sleep(interval)
except OSError as e:
    sys.exit("canary not sent on %s: %s" % (iface, e.strerror or e))
"""

# argv: interface, frame hex, interface, frame hex, …: one canary on each (a journey's hops of one node
# in one process and one SSH round trip); says each one it could not send, exits 1 if any
_SEND_EACH_SCRIPT: Final = """\
import socket, sys
failed = []
for iface, frame in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((iface, 0))
            s.send(bytes.fromhex(frame))
    except OSError as e:
        failed.append("canary not sent on %s: %s" % (iface, e.strerror or e))
if failed:
    sys.exit("; ".join(failed))
"""


def send_each_argv(canaries: Sequence[tuple[str, Canary]]) -> list[str]:
    """python3 sending one canary on each (interface, canary) of one node, in one process."""
    if not canaries:
        raise ValueError("no canary to send")
    pairs = [
        word
        for interface, canary in canaries
        for word in (validate_interface(interface), canary.frame().hex())
    ]
    return ["python3", "-c", _SEND_EACH_SCRIPT, *pairs]


def canary_filter(user_filter: str) -> str:
    """The capture filter that lets canaries through whatever the user asked for ("" stays "")."""
    return f"({user_filter}) or (ether dst {CANARY_DST})" if user_filter else ""


class CanaryNotSent(Exception):
    """The canary could not be put on the interface (down, missing, no python3, no permission)."""

    def __init__(self, interface: str, reason: str) -> None:
        super().__init__(reason)
        self.interface = interface
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Canary:
    """One stream's canary: its 5-byte token is the source MAC's last 5 bytes."""

    token: bytes

    def __post_init__(self) -> None:
        if len(self.token) != 5:
            raise ValueError("a canary token is 5 bytes")

    @classmethod
    def new(cls) -> Canary:
        return cls(secrets.token_bytes(5))

    @property
    def src_mac(self) -> str:
        return ":".join(f"{b:02x}" for b in b"\x02" + self.token)

    def frame(self) -> bytes:
        """The Ethernet frame, padded to the 60-byte minimum."""
        dst = bytes.fromhex(CANARY_DST.replace(":", ""))
        header = dst + b"\x02" + self.token + CANARY_ETHERTYPE.to_bytes(2, "big")
        return (header + CANARY_PAYLOAD).ljust(60, b"\0")

    def send_argv(
        self, interface: str, count: int = 50, interval: float = 0.1, *, recorded_prefix: str = ""
    ) -> list[str]:
        """python3 sending `count` canaries on `interface`, `interval` s apart (5 s by default). With
        `recorded_prefix` (the relay's recording prefix) it stops once the relay has recorded one."""
        if not 1 <= count <= 1000 or not 0.0 <= interval <= 10.0:
            raise ValueError("send 1-1000 canaries, 0-10 s apart")
        iface = validate_interface(interface)
        stop = f"{recorded_prefix}-canary-{self.src_mac.replace(':', '')}" if recorded_prefix else ""
        return [
            "python3", "-c", _SEND_SCRIPT, iface, self.frame().hex(), str(count), repr(float(interval)), stop,
        ]  # fmt: skip

    def is_mine(self, packet: PacketSummary) -> bool:
        return packet.dst == CANARY_DST and packet.src == self.src_mac


def is_canary(packet: PacketSummary) -> bool:
    """Any stream's canary (a bridge floods one stream's canaries into the others)."""
    return packet.dst == CANARY_DST


def interpret_canary_send(interface: str, exit_status: int | None, stderr: str) -> None:
    """Raise CanaryNotSent with the node's words unless the sender ran to the end."""
    if exit_status == 0:
        return
    if exit_status in (126, 127):
        raise CanaryNotSent(interface, "python3 is not installed on the node: readiness cannot be proven")
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("Running as")]
    raise CanaryNotSent(interface, lines[-1] if lines else f"the canary sender exited {exit_status}")


class CanaryWatch:
    """Removes canaries from a stream's packets; `ready` once this stream's own canary came through."""

    def __init__(self, canary: Canary) -> None:
        self.canary = canary
        self.ready = False
        self.ready_at: float | None = None  # the canary's capture timestamp
        self.removed = 0

    def take(self, packets: Iterable[PacketSummary]) -> list[PacketSummary]:
        kept: list[PacketSummary] = []
        mine = self.canary.src_mac
        for packet in packets:
            if packet.dst != CANARY_DST:
                kept.append(packet)
                continue
            self.removed += 1
            if not self.ready and packet.src == mine:
                self.ready = True
                self.ready_at = packet.ts
        return kept
