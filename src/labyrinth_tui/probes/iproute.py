"""Pure parsers of iproute2's JSON (`ip -j -d addr`, `ip -j route`, `ip -j netns list`) into the model.

They never raise on bad input: whatever cannot be read is skipped and said in the `problems` list.
Written against iproute2 6.1 (Debian 12), which gives `link_netnsid` as an integer id only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from labyrinth_tui.model.decode import short
from labyrinth_tui.model.topology import Interface, InterfaceKind, Route, VxlanInfo

KINDS = {"veth": InterfaceKind.VETH, "vxlan": InterfaceKind.VXLAN, "bridge": InterfaceKind.BRIDGE}


class DiscoveryError(ValueError):
    """Discovery output that gives nothing usable; the message says what was wrong with it."""


def load_json_list(text: str, what: str) -> list[Any]:
    """A JSON array, or DiscoveryError saying why not."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise DiscoveryError(f"{what}: not JSON ({str(exc)[:120]})") from None
    if not isinstance(value, list):
        raise DiscoveryError(f"{what}: expected a JSON list, got {type(value).__name__}")
    return value


def load_json_values(text: str, what: str) -> list[Any]:
    """Several JSON values one after the other (what `ip -j -b` prints: one array per command)."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return values
        try:
            value, at = decoder.raw_decode(text, at)
        except (ValueError, RecursionError) as exc:
            raise DiscoveryError(f"{what}: not JSON ({str(exc)[:120]})") from None
        values.append(value)


def _int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _dict(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _kind(link: Mapping[str, Any]) -> tuple[InterfaceKind, str | None]:
    info_kind = _str(_dict(link, "linkinfo"), "info_kind")
    if info_kind in KINDS:
        return KINDS[info_kind], info_kind
    if link.get("link_type") == "loopback":
        return InterfaceKind.LOOPBACK, info_kind
    return InterfaceKind.DEVICE, info_kind  # physical NICs, and kinds we do not draw (dummy, geneve…)


def _addresses(link: Mapping[str, Any]) -> tuple[str, ...]:
    found = []
    infos = link.get("addr_info")
    for info in infos if isinstance(infos, list) else ():
        if isinstance(info, dict):
            local, prefix = _str(info, "local"), _int(info, "prefixlen")
            if local and prefix is not None:
                found.append(f"{local}/{prefix}")
    return tuple(found)


def _vxlan(link: Mapping[str, Any]) -> VxlanInfo | None:
    data = _dict(_dict(link, "linkinfo"), "info_data")
    vni = _int(data, "id")
    if vni is None:
        return None
    return VxlanInfo(vni=vni, port=_int(data, "port") or 0, local=_str(data, "local") or _str(data, "local6"))


def parse_interfaces(text: str, what: str = "interfaces") -> tuple[list[Interface], list[str]]:
    """`ip -j -d addr show` (or `ip -j -d link show`) → interfaces, and what could not be read."""
    return interfaces_from_json(load_json_list(text, what), what)


def interfaces_from_json(links: list[Any], what: str = "interfaces") -> tuple[list[Interface], list[str]]:
    problems: list[str] = []
    by_name: dict[str, int] = {}
    seen: set[int] = set()
    readable: list[Mapping[str, Any]] = []
    for link in links:
        if not isinstance(link, dict):
            problems.append(f"{what}: an entry is {type(link).__name__}, not an object")
            continue
        name, ifindex = _str(link, "ifname"), _int(link, "ifindex")
        if not name or ifindex is None or ifindex <= 0:
            problems.append(f"{what}: an entry without ifname/ifindex ({short(link)})")
            continue
        if ifindex in seen or name in by_name:
            problems.append(f"{what}: {name} (ifindex {ifindex}) appears twice; kept the first")
            continue
        by_name[name] = ifindex
        seen.add(ifindex)
        readable.append(link)
    interfaces = []
    for link in readable:
        kind, info_kind = _kind(link)
        # a veth whose peer is in this netns names it ("link"); one whose peer is elsewhere gives its index
        peer = _int(link, "link_index")
        if peer is None and (peer_name := _str(link, "link")) is not None:
            peer = by_name.get(peer_name)
        interfaces.append(
            Interface(
                name=link["ifname"],
                ifindex=link["ifindex"],
                kind=kind,
                mtu=_int(link, "mtu") or 0,
                mac=_str(link, "address") or "",
                state=_str(link, "operstate") or "UNKNOWN",
                addresses=_addresses(link),
                master=_str(link, "master"),
                link_netnsid=_int(link, "link_netnsid"),
                peer_ifindex=peer,
                vxlan=_vxlan(link) if kind is InterfaceKind.VXLAN else None,
                link_kind=info_kind,
            )
        )
    return interfaces, problems


def parse_routes(text: str, what: str = "routes") -> tuple[list[Route], list[str]]:
    """`ip -j route show` → routes, and what could not be read."""
    return routes_from_json(load_json_list(text, what), what)


def routes_from_json(entries: list[Any], what: str = "routes") -> tuple[list[Route], list[str]]:
    problems: list[str] = []
    routes = []
    for entry in entries:
        dst = _str(entry, "dst") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or dst is None:
            problems.append(f"{what}: an entry without dst ({short(entry)})")
            continue
        metrics = entry.get("metrics")
        mtu = (
            next(
                (m["mtu"] for m in metrics if isinstance(m, dict) and _int(m, "mtu") is not None),
                None,
            )
            if isinstance(metrics, list)
            else None
        )
        routes.append(
            Route(
                dst=dst,
                gateway=_str(entry, "gateway"),
                dev=_str(entry, "dev"),
                src=_str(entry, "prefsrc"),
                mtu=mtu,
                scope=_str(entry, "scope"),
            )
        )
    return routes, problems


def parse_netns_ids(text: str, what: str = "netns list") -> tuple[dict[int, str], list[str]]:
    """`ip -j netns list`, run in the namespace whose ids we need → {netnsid: name}.

    Only namespaces with an id are returned: an id is what `link_netnsid` refers to.
    """
    problems: list[str] = []
    ids: dict[int, str] = {}
    for entry in load_json_list(text, what):
        name = _str(entry, "name") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not name:
            problems.append(f"{what}: an entry without a name ({short(entry)})")
            continue
        netnsid = _int(entry, "id")
        if netnsid is None:
            continue  # not linked to this namespace
        if netnsid in ids:
            problems.append(f"{what}: id {netnsid} given to both {ids[netnsid]} and {name}")
            continue
        ids[netnsid] = name
    return ids, problems


def parse_netns_inodes(text: str) -> dict[str, int]:
    """`ls -iL /run/netns` → {netns name: inode of its namespace}."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        inode, _, name = line.strip().partition(" ")
        if _is_number(inode) and name.strip():
            found[name.strip()] = int(inode)
    return found


def parse_ps(text: str) -> dict[int, tuple[int | None, str]]:
    """`ps -e -o pid=,netns=,args=` → {pid: (inode of its netns or None, args)}."""
    found: dict[int, tuple[int | None, str]] = {}
    for line in text.splitlines():
        words = line.split(None, 2)
        if len(words) >= 2 and _is_number(words[0]):
            netns = int(words[1]) if _is_number(words[1]) else None
            found[int(words[0])] = (netns, words[2].strip() if len(words) == 3 else "")
    return found


def _is_number(word: str) -> bool:
    return word.isascii() and word.isdigit() and len(word) <= 20


def parse_route_get(text: str, what: str = "route get") -> Route:
    """`ip -j route get <ip>` → its Route (`dst` is the address asked about); DiscoveryError when it has none.

    iproute2 6.1 prints one object: `[{"dst":"10.0.2.215","gateway":"10.0.2.244","dev":"cilium_vxlan",
    "prefsrc":"10.0.1.49","flags":["onlink"],"uid":0,"cache":[]}]`.
    """
    entries = load_json_list(text, what)
    routes, problems = routes_from_json(entries[:1], what)
    if not routes or not routes[0].dev:
        raise DiscoveryError(problems[0] if problems else f"{what}: no device in {text.strip()[:120]!r}")
    return routes[0]
