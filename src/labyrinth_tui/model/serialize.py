"""JSON ⇄ model: Topology and PacketSummary as plain dicts (record/replay bundles, `--json` twins)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step, StepState
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


def packet_from_json(data: dict[str, Any]) -> PacketSummary:
    try:
        return PacketSummary(**{k: v for k, v in data.items() if k in _PACKET_FIELDS})
    except TypeError as exc:
        raise BundleFormatError(f"not a packet summary: {exc}") from exc


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


def topology_from_json(data: dict[str, Any]) -> Topology:
    try:
        services = tuple(
            Service(
                **{
                    **s,
                    "ports": tuple(ServicePort(**p) for p in s.get("ports", ())),
                    "endpoints": tuple(s.get("endpoints", ())),
                }
            )
            for s in data.get("services", ())
        )
        return Topology(
            cluster=data["cluster"], nodes=tuple(_node(n) for n in data.get("nodes", ())), services=services
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleFormatError(f"not a topology: {exc!r}") from exc
