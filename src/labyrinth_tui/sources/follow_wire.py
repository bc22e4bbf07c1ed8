"""What travels between the presenter, the serve hub and each viewer: follow events and their framing."""

from __future__ import annotations

import asyncio
import json
import pickle
import struct
from dataclasses import dataclass
from typing import Any

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.tour import TourStep
from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.sources.base import SourceEvent, StreamSpec

HEADER = struct.Struct("!I")
MAX_FRAME = 64 << 20  # a journey report or a 2048-packet batch is far below; more is a broken peer
MAX_REQUEST = (
    64 << 10
)  # a viewer's request (one packet's fields) is ~1 KiB: a viewer never makes us buffer more


@dataclass(frozen=True, slots=True)
class StreamOpened:
    spec: StreamSpec


@dataclass(frozen=True, slots=True)
class StreamClosed:
    spec: StreamSpec


@dataclass(frozen=True, slots=True)
class JourneyStarted:
    pass


@dataclass(frozen=True, slots=True)
class JourneyShown:
    report: JourneyReport


@dataclass(frozen=True, slots=True)
class TourShown:
    """The presenter ran the tour: its journey (None when it could not be made) and each step's ✓ or ✗."""

    report: JourneyReport | None
    steps: tuple[TourStep, ...]


@dataclass(frozen=True, slots=True)
class Selection:
    """What the presenter's cursor is on in the tree, in words (node › interface)."""

    label: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """Packets of a stream the hub did not send this viewer because its link could not keep up."""

    spec: StreamSpec
    count: int


@dataclass(frozen=True, slots=True)
class Notice:
    text: str


@dataclass(frozen=True, slots=True)
class DetailAsk:
    """hub → presenter: a viewer wants one packet's dissection (read-only)."""

    request: int
    spec: StreamSpec
    packet: PacketSummary


@dataclass(frozen=True, slots=True)
class DetailReply:
    request: int
    dissection: Dissection | None
    error: str = ""


FollowEvent = (
    StreamOpened | StreamClosed | JourneyStarted | JourneyShown | TourShown | Selection | Dropped | Notice
)
Frame = SourceEvent | FollowEvent | DetailAsk | DetailReply


def encode(message: Frame) -> bytes:
    """One frame, pickled once and written to every viewer as the same bytes."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


async def read_body(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> bytes | None:
    """The next frame's body, or None at the end of the stream."""
    try:
        head = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(head)
        if size > limit:
            raise ValueError(f"frame of {size} bytes")
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """Server → viewer and presenter ↔ server frames: pickled, both ends are this program."""
    body = await read_body(reader)
    return None if body is None else pickle.loads(body)


async def read_encoded(reader: asyncio.StreamReader) -> tuple[Frame, bytes] | None:
    """The next frame and its bytes as they came, so the hub forwards them without pickling again."""
    body = await read_body(reader)
    return None if body is None else (pickle.loads(body), HEADER.pack(len(body)) + body)


def encode_request(request: dict[str, Any]) -> bytes:
    """Viewer → server frames are JSON: the server never unpickles what a viewer's process sends."""
    body = json.dumps(request, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


async def read_request(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    body = await read_body(reader, MAX_REQUEST)
    if body is None:
        return None
    loaded = json.loads(body)
    if not isinstance(loaded, dict):
        raise ValueError("a request is a JSON object")
    return loaded
