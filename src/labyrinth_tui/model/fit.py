"""Fitting a line into a width: the least important fields shrink in the middle or go, the rest stay whole."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ELLIPSIS = "…"
_SEPARATORS = "-./:"


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters. Too long, its middle gives way to `…`: the head says what it
    is, the tail is what tells it from its siblings (a pod's hash suffix `-2zncq`, an lxc's last hex
    digits), so the tail after the last separator is kept whole when it takes at most half the room."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    room = width - 1
    cut = max(text.rfind(sep) for sep in _SEPARATORS)
    tail_len = len(text) - cut if cut > 0 and len(text) - cut <= room // 2 else room // 2
    tail_len = max(tail_len, room // 3)
    head_len = room - tail_len
    return text[:head_len] + ELLIPSIS + text[len(text) - tail_len :]


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a line. `rank` 0 is the most important (the node, the interface); the highest rank
    gives way first. A field with `min_width` may shrink down to it (its middle cut) before anything is
    dropped; `required` ones are never dropped, only cut as a last resort."""

    text: str
    rank: int = 0
    min_width: int | None = None
    required: bool = False


def fit_fields(fields: Sequence[Field], width: int, sep: str = "  ") -> list[str | None]:
    """The fields' texts, shrunk or dropped (None) so that the kept ones joined by `sep` fit in `width`.

    Order of giving way: shrinkable fields shrink (highest rank first) to their minimum; if that is not
    enough, optional fields are dropped (highest rank first) and the shrunk ones get back what room there
    is; last, the required fields are cut to fit."""
    droppable = sorted((i for i, f in enumerate(fields) if not f.required), key=lambda i: -fields[i].rank)
    for dropped in range(len(droppable) + 1):
        gone = set(droppable[:dropped])
        kept = [i for i in range(len(fields)) if i not in gone]
        fitted = _shrink(fields, kept, width, sep, to_min=True)
        if fitted is not None:
            return fitted
    kept = [i for i, f in enumerate(fields) if f.required]
    fitted = _shrink(fields, kept, width, sep, to_min=False)
    if fitted is not None:
        return fitted
    # more required fields than the width holds even cut to one character: the first one, cut
    first = kept[0] if kept else 0
    return [shorten(f.text, width) if i == first else None for i, f in enumerate(fields)]


def _shrink(
    fields: Sequence[Field], kept: list[int], width: int, sep: str, *, to_min: bool
) -> list[str | None] | None:
    texts: list[str | None] = [fields[i].text if i in kept else None for i in range(len(fields))]
    overflow = sum(len(fields[i].text) for i in kept) + len(sep) * max(0, len(kept) - 1) - width
    order = sorted(kept, key=lambda i: -fields[i].rank)
    for i in order:
        if overflow <= 0:
            break
        field = fields[i]
        floor = (field.min_width if field.min_width is not None else len(field.text)) if to_min else 1
        give = min(overflow, max(0, len(field.text) - floor))
        if give:
            texts[i] = shorten(field.text, len(field.text) - give)
            overflow -= give
    if overflow > 0:
        return None
    return texts


def joined(texts: Sequence[str | None], sep: str = "  ") -> str:
    return sep.join(t for t in texts if t is not None)
