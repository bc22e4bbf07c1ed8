"""One packet fully dissected, as plain data: layers → nested fields with their shownames, and its bytes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DissectionField:
    """One line of Wireshark's packet-details tree, with the lines under it."""

    name: str  # "tcp.flags"; "" for a text-only line
    showname: str  # "Flags: 0x012 (SYN, ACK)", what Wireshark shows
    show: str = ""  # the value as shown: "0x012"
    value: str = ""  # the raw bytes it covers, hex ("" for generated fields)
    pos: int = 0  # offset in the frame's bytes
    size: int = 0
    hidden: bool = False  # Wireshark hides it (filterable, not shown)
    children: tuple[DissectionField, ...] = ()

    def walk(self) -> Iterator[DissectionField]:
        """This field, then every field under it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class DissectionLayer:
    """A protocol: "eth", "ip", "udp", "vxlan", then the inner "eth", "ip", "tcp" of a VXLAN packet."""

    name: str
    showname: str  # "Internet Protocol Version 4, Src: 10.0.1.15, Dst: 10.0.2.215"
    pos: int
    size: int
    fields: tuple[DissectionField, ...]

    def walk(self) -> Iterator[DissectionField]:
        for field in self.fields:
            yield from field.walk()

    def find(self, name: str) -> DissectionField | None:
        return next((f for f in self.walk() if f.name == name), None)


@dataclass(frozen=True, slots=True)
class Dissection:
    """Packet `number` of a capture file: its layers in order and its bytes."""

    number: int
    layers: tuple[DissectionLayer, ...]
    data: bytes

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def layer(self, name: str, occurrence: int = 0) -> DissectionLayer | None:
        """The `occurrence`-th layer called `name` (1 is the inner IP of a VXLAN packet)."""
        found = [layer for layer in self.layers if layer.name == name]
        return found[occurrence] if occurrence < len(found) else None

    def find(self, name: str) -> DissectionField | None:
        """The first field called `name` in any layer."""
        for layer in self.layers:
            if (field := layer.find(name)) is not None:
                return field
        return None

    def hex_lines(self) -> list[str]:
        """Wireshark's bytes pane, 16 bytes a line: offset, hex in two groups of 8, printable ASCII."""
        lines = []
        for offset in range(0, len(self.data), 16):
            chunk = self.data[offset : offset + 16]
            left = " ".join(f"{b:02x}" for b in chunk[:8])
            right = " ".join(f"{b:02x}" for b in chunk[8:])
            text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
            lines.append(f"{offset:04x}  {left:<23}  {right:<23}   {text}")
        return lines
