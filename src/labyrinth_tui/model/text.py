"""inert(): text from outside (a file, a node, a packet) made safe to reach a terminal or a widget."""

from __future__ import annotations

import dataclasses
import re
from enum import Enum
from typing import TypeVar, cast

T = TypeVar("T")

# ESC-introduced sequences first (CSI … final byte, OSC … BEL/ST, and two-byte ESC x), so that their
# parameters go with them; then any other C0/C1 control character and DEL. Newline and tab only
# where the caller wants them.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (window title …), ended by BEL or ST
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b.?"  # any other ESC x
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
    r"|\x9d[^\x07\x9c]*[\x07\x9c]?",  # 8-bit OSC
    re.DOTALL,
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_AND_LINES = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def inert(text: str, *, keep_lines: bool = False) -> str:
    """`text` with no terminal escape sequence and no control character (newline/tab kept if asked)."""
    if text.isprintable():
        return text  # the common case, checked in C
    if keep_lines and _CONTROLS.search(text) is None:
        return text  # lines of plain text: also checked in C, no copy
    text = _ESCAPES.sub("", text)
    return (_CONTROLS if keep_lines else _CONTROLS_AND_LINES).sub("", text)


def inert_fields(value: T) -> T:
    """`value` with inert() applied to every string in it: dataclasses, tuples, lists and dicts walked.

    The same object comes back when nothing needed changing (the usual case), so a topology of
    thousands of names costs one isprintable() per string. A tuple subclass (PacketSummary) is left
    as it is: packets are made inert where they are parsed.
    """
    return cast(T, _inert_value(value))


def _inert_value(value: object) -> object:
    if isinstance(value, str):
        return inert(value, keep_lines=True)
    if isinstance(value, Enum | int | float | bool) or value is None:
        return value
    if type(value) is tuple or type(value) is list:
        items = [_inert_value(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    if type(value) is dict:
        pairs = {_inert_value(k): _inert_value(v) for k, v in value.items()}
        same = len(pairs) == len(value) and all(pairs.get(k, _MISSING) is v for k, v in value.items())
        return value if same else pairs
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            old = getattr(value, f.name)
            new = _inert_value(old)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


_MISSING = object()
