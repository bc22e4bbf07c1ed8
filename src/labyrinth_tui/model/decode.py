"""Typed decoding of untrusted JSON/YAML data into dataclasses: one DecodeError saying where and what."""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import Any, TypeVar, Union

T = TypeVar("T")
MAX_DEPTH = 64  # nothing we read nests deeper than ~6; deeper is a crafted file
MAX_ITEMS = 1_000_000  # per list or mapping
SHOWN = 80  # error messages never print more of a value than this


class DecodeError(ValueError):
    """Data that is not what was expected: `where` is a path like `$.nodes[2].ssh.port`."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"at {short(where, 60)}: {message}")
        self.where = where


def short(value: object, limit: int = SHOWN) -> str:
    """A value for an error message: repr'd, cut to `limit` characters, never the whole of a huge value."""
    text = value if isinstance(value, str) else _cheap_repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cheap_repr(value: object) -> str:
    # repr() of a huge or deep container is itself slow or recursive: name its kind and size instead
    if isinstance(value, dict):
        return f"a mapping of {len(value)} keys"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    if isinstance(value, str | bytes):
        return repr(value[: SHOWN + 1])
    return repr(value)


def kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads with a depth limit checked before parsing (200k brackets never reach the recursion)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("$", f"not UTF-8 (byte {exc.start})") from None
    check_depth(text, max_depth)
    try:
        return json.loads(text)
    except RecursionError:
        raise DecodeError("$", f"nested deeper than {max_depth}") from None
    except ValueError as exc:
        raise DecodeError("$", f"not JSON ({short(str(exc))})") from None


def check_depth(text: str, max_depth: int) -> None:
    """Cheap upper bound on nesting: brackets outside strings are counted without parsing."""
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                raise DecodeError("$", f"nested deeper than {max_depth}")
        elif ch in "]}":
            depth -= 1


def decode(cls: type[T], data: object, where: str = "$") -> T:
    """`data` as an instance of dataclass `cls`, every field checked against its annotation."""
    return typing.cast(T, _decode(cls, data, where))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, data: object, where: str) -> object:
    origin = typing.get_origin(tp)
    if tp is Any:
        return data
    if origin in (Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _decode(option, data, where)
            except DecodeError as exc:
                errors.append(exc)
        raise errors[-1]
    if tp is type(None):
        if data is None:
            return None
        raise DecodeError(where, f"expected null, got {kind(data)}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp, data, where)
    if origin is list or origin is tuple:
        if not isinstance(data, list):
            raise DecodeError(where, f"expected a list, got {kind(data)}")
        if len(data) > MAX_ITEMS:
            raise DecodeError(where, f"more than {MAX_ITEMS} items")
        (item,) = typing.get_args(tp)[:1]
        items = [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
        return items if origin is list else tuple(items)
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(data, dict):
            raise DecodeError(where, f"expected a mapping, got {kind(data)}")
        return {
            _decode(key_tp, k, where): _decode(value_tp, v, f"{where}.{short(str(k), 30)}")
            for k, v in data.items()
        }
    return _scalar(tp, data, where)


def _scalar(tp: Any, data: object, where: str) -> object:
    if tp is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if tp is int and isinstance(data, int) and not isinstance(data, bool):
        return data
    if tp in (str, bool) and type(data) is tp:
        return data
    name = getattr(tp, "__name__", str(tp))
    raise DecodeError(where, f"expected {name}, got {kind(data)} {short(data, 40)}")


def _dataclass(cls: type, data: object, where: str) -> object:
    if not isinstance(data, dict):
        raise DecodeError(where, f"expected a mapping, got {kind(data)}")
    hints = _hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DecodeError(where, f"missing key {f.name!r}")
    return cls(**values)
