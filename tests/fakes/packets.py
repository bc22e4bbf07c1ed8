"""A packet of the article's connection, numbered: what tests that stream packets feed a list or a hub."""

from __future__ import annotations

from labyrinth_tui.model.packets import PacketSummary

CLIENT_NODE = "node-1"
CLIENT_LXC = "lxc1ba60d50596c"


def ack(number: int, *, per_second: float = 5000.0) -> PacketSummary:
    """The client's ACK number `number` on its lxc device, `per_second` of them a second from 1.7e9."""
    return PacketSummary(
        ts=1_700_000_000 + number / per_second,
        node=CLIENT_NODE,
        interface=CLIENT_LXC,
        number=number,
        src="10.0.1.15",
        dst="10.0.2.215",
        protocol="TCP",
        length=74,
        info=f"38430 → 9999 [ACK] Seq={number}",
        sport=38430,
        dport=9999,
    )
