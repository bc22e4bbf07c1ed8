"""YAML from files we did not write (inventories, kubeconfigs): no aliases, bounded depth and size."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import Node

from labyrinth_tui.model.decode import short

MAX_BYTES: Final = 1 << 20  # a kubeconfig with a few certificates is ~10 KB; an inventory of 100 VMs ~20 KB
MAX_DEPTH: Final = 32  # a kubeconfig nests 5 deep (users[].user.exec.env[].value)
MAX_NODES: Final = 100_000  # scalars + collections in one document


class YamlError(ValueError):
    """The text is not YAML we accept; the message is one line: the source, the line, what is wrong."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases, and stops at MAX_DEPTH and MAX_NODES.

    An alias is how a 1 KB file expands into gigabytes (`a: &a [x, x, …]`, `b: [*a, *a, …]`, …): the
    files we read never need one, so the first anchor ends the parse, before anything is expanded.
    Depth is counted here because PyYAML's composer recurses once per level (RecursionError otherwise).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, AliasEvent):
            raise YamlError(f"line {line}: aliases (*{short(event.anchor, 30)}) are not accepted")
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.anchor is not None:
            raise YamlError(f"line {line}: anchors (&{short(event.anchor, 30)}) are not accepted")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise YamlError(f"line {line}: more than {MAX_NODES} values")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlError(f"line {line}: nested deeper than {MAX_DEPTH}")
            node: Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1


def safe_load(text: str, source: str) -> Any:
    """The one YAML document in `text`; YamlError `source: line N: what` for anything else."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"{source}: larger than {MAX_BYTES // 1024} KB")
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader checks every character here, so this is inside the try
        return loader.get_single_data()
    except YamlError as exc:
        raise YamlError(f"{source}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = short(exc.problem or exc.context or "")
        raise YamlError(f"{source}: not valid YAML: {where}{problem}") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        # ValueError/TypeError: the safe constructor's own failures (e.g. a timestamp out of range)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise YamlError(f"{source}: not valid YAML: {short(first)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(path: Path, what: str) -> Any:
    """The YAML document in the file at `path`, read no further than MAX_BYTES (it may be /dev/zero).

    OSError is left to the caller (it knows whether a missing file is a usage error); every defect of
    the content is YamlError `WHAT PATH: line N: …`.
    """
    source = f"{what} {path}"
    with path.open("rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise YamlError(f"{source}: larger than {MAX_BYTES // 1024} KB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"{source}: not UTF-8 (byte {exc.start})") from None
    return safe_load(text, source)


def text_of(value: object, source: str, key: str, *, required: bool = False) -> str | None:
    """`value` when it is a string (or absent and not `required`); YamlError naming the file and key."""
    if value is None and not required:
        return None
    if isinstance(value, str):
        return value
    shown = f"a list of {len(value)}" if isinstance(value, list) else short(value, 40)
    raise YamlError(f"{source}: {key} must be text, not {shown}")
