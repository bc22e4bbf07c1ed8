"""JSON ⇄ model: Topology and PacketSummary as plain dicts (record/replay bundles, `--json` twins)."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from labyrinth_tui.model.decode import kind, short
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.model.text import inert
from labyrinth_tui.model.topology import (
    Interface,
    InterfaceKind,
    Node,
    Pod,
    Route,
    Service,
    ServicePort,
    Topology,
    VxlanInfo,
    to_jsonable,
)

_PACKET_FIELDS = tuple(f.name for f in fields(PacketSummary))


class BundleFormatError(ValueError):
    """A recorded file does not have the shape this version reads."""


def packet_to_json(packet: PacketSummary) -> dict[str, Any]:
    return {name: value for name in _PACKET_FIELDS if (value := getattr(packet, name)) is not None}


_PACKET_TYPES = {f.name: str(f.type) for f in fields(PacketSummary)}
MAX_TEXT = 4096  # a field of a packet summary (tshark's info line is far shorter)
_SHARED_MAX = 65_536  # distinct strings shared per file


def packet_from_json(data: object, strings: dict[str, str] | None = None) -> PacketSummary:
    """A packet summary from untrusted JSON: every field's type checked, every string made inert.

    `strings`, kept across the packets of a file, shares the strings they repeat (node, interface,
    addresses, protocol, flags): one copy each instead of one per packet (~300 bytes a packet).
    """
    if not isinstance(data, dict):
        raise BundleFormatError(f"not a packet summary: expected a mapping, got {kind(data)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        wanted = _PACKET_TYPES.get(name) if isinstance(name, str) else None
        if wanted is None or value is None:
            continue
        value = _field(name, wanted, value)
        if strings is not None and type(value) is str and name != "info":
            if len(strings) >= _SHARED_MAX:
                strings.clear()  # a file of all-distinct strings cannot grow it past this
            value = strings.setdefault(value, value)
        values[name] = value
    missing = [n for n, f in _REQUIRED.items() if f and n not in values]
    if missing:
        raise BundleFormatError(f"not a packet summary: missing {', '.join(missing)}")
    return PacketSummary(**values)


_REQUIRED = {f.name: f.default is MISSING for f in fields(PacketSummary)}


def _field(name: str, wanted: str, value: object) -> object:
    if "str" in wanted and isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise BundleFormatError(f"{name}: longer than {MAX_TEXT} characters")
        return inert(value)
    if "float" in wanted and isinstance(value, int | float) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise BundleFormatError(f"{name}: not a finite number")
        return float(value)
    if "int" in wanted and isinstance(value, int) and not isinstance(value, bool):
        if not -(1 << 63) <= value < 1 << 63:
            raise BundleFormatError(f"{name}: out of range")
        return value
    raise BundleFormatError(f"{name}: expected {wanted.split(' |')[0]}, got {kind(value)} {short(value, 40)}")


def step_from_json(data: dict[str, Any]) -> Step:
    return Step(**{**data, "state": StepState(data.get("state", "pending"))})


def _route(d: dict[str, Any]) -> Route:
    return Route(**d)


def _interface(d: dict[str, Any]) -> Interface:
    vxlan = d.get("vxlan")
    return Interface(
        **{
            **d,
            "kind": InterfaceKind(d["kind"]),
            "addresses": tuple(d.get("addresses", ())),
            "vxlan": VxlanInfo(**vxlan) if vxlan else None,
        }
    )


def _pod(d: dict[str, Any]) -> Pod:
    return Pod(
        **{
            **d,
            "routes": tuple(_route(r) for r in d.get("routes", ())),
            "processes": tuple(d.get("processes", ())),
        }
    )


def _node(d: dict[str, Any]) -> Node:
    return Node(
        **{
            **d,
            "interfaces": tuple(_interface(i) for i in d.get("interfaces", ())),
            "routes": tuple(_route(r) for r in d.get("routes", ())),
            "pods": tuple(_pod(p) for p in d.get("pods", ())),
            "netns": tuple(d.get("netns", ())),
        }
    )


def topology_to_json(topology: Topology) -> dict[str, Any]:
    result: dict[str, Any] = to_jsonable(topology)
    return result


def _inert_tree(data: Any) -> Any:
    """Every string of a JSON tree made inert (names shown in the tree, details and CLI)."""
    if isinstance(data, str):
        return inert(data)
    if isinstance(data, list):
        return [_inert_tree(v) for v in data]
    if isinstance(data, dict):
        return {inert(k) if isinstance(k, str) else k: _inert_tree(v) for k, v in data.items()}
    return data


def topology_from_json(data: object) -> Topology:
    if not isinstance(data, dict):
        raise BundleFormatError(f"not a topology: expected a mapping, got {kind(data)}")
    tree: dict[str, Any] = _inert_tree(data)
    try:
        services = tuple(
            Service(
                **{
                    **s,
                    "ports": tuple(ServicePort(**p) for p in s.get("ports", ())),
                    "endpoints": tuple(s.get("endpoints", ())),
                }
            )
            for s in tree.get("services", ())
        )
        return Topology(
            cluster=tree["cluster"], nodes=tuple(_node(n) for n in tree.get("nodes", ())), services=services
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleFormatError(f"not a topology: {short(repr(exc))}") from None
