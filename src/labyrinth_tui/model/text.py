"""inert(): text from outside (a file, a node, a packet) made safe to reach a terminal or a widget."""

from __future__ import annotations

import re

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
    text = _ESCAPES.sub("", text)
    return (_CONTROLS if keep_lines else _CONTROLS_AND_LINES).sub("", text)
