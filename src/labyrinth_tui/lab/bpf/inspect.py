"""Read a lab's datapath back from the kernel: each node's links (link info by fd), counters, service map.

Debian 12's bpftool 7.1 prints a tcx link as `type 11 prog N`, with no device and no direction, and
its `bpftool net` lists no tcx at all (`bpftool -j link show` on this machine). So the lab reads
struct bpf_link_info itself through BPF_OBJ_GET_INFO_BY_FD on each pinned link: its `tcx` member
holds the ifindex and the attach type. Device names are resolved inside the node's netns.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

from labyrinth_tui.lab.bpf import libbpf
from labyrinth_tui.lab.bpf.datapath import node_pins
from labyrinth_tui.lab.bpf.maps import (
    LB4_BACKEND,
    LB4_KEY,
    LB4_SERVICE,
    PROTOCOL_NAMES,
    unpack_counter,
    unpack_counter_key,
)
from labyrinth_tui.lab.netns import entered
from labyrinth_tui.lab.state import LabState
from labyrinth_tui.model.bpf import BpfLink, LabBpf, LbBackend, LbService, NodeBpf

# the programs' hook numbers (enum hook in csrc/lib/common.h), by their full C names
HOOKS = {
    "cil_from_container": 1,
    "cil_from_overlay": 2,
    "cil_to_overlay": 3,
    "cil_from_host": 4,
    "cil_to_host": 5,
    "cil_from_netdev": 6,
}
BPF_LINK_TYPE_TCX = 11
TCX_ATTACH = {46: "tcx_ingress", 47: "tcx_egress"}
KERNEL_NAME_LEN = 15  # BPF_OBJ_NAME_LEN - 1


def full_name(kernel_name: str) -> str:
    """The kernel keeps 15 characters of a program's name (`cil_from_contai`): give back the C name."""
    return next((n for n in HOOKS if n[:KERNEL_NAME_LEN] == kernel_name), kernel_name)


def prog_name(prog_id: int) -> str:
    fd = libbpf.prog_fd_by_id(prog_id)
    try:
        info = libbpf.obj_info(fd)
    finally:
        os.close(fd)
    # struct bpf_prog_info: char name[16] at offset 64
    return full_name(info[64:80].split(b"\0", 1)[0].decode(errors="replace"))


def tcx_link(path: Path) -> tuple[int, int, int, str]:
    """(link id, prog id, ifindex, attach type) of a pinned tcx link."""
    fd = libbpf.obj_get(str(path))
    try:
        info = libbpf.obj_info(fd)
    finally:
        os.close(fd)
    # struct bpf_link_info: type, id, prog_id, then (8-aligned) the union whose tcx is {ifindex, attach_type}
    link_type, link_id, prog_id = struct.unpack_from("=III", info, 0)
    if link_type != BPF_LINK_TYPE_TCX:
        raise libbpf.BpfError(22, f"{path.name}: link type {link_type}, not tcx")
    ifindex, attach_type = struct.unpack_from("=II", info, 16)
    return link_id, prog_id, ifindex, TCX_ATTACH.get(attach_type, str(attach_type))


def _counters(pins: Path) -> dict[tuple[int, int], tuple[int, int]]:
    fd = libbpf.obj_get(str(pins / "maps" / "cil_counters"))
    try:
        return {unpack_counter_key(k): unpack_counter(v) for k, v in libbpf.map_items(fd, 8, 16)}
    finally:
        os.close(fd)


def services(pins: Path) -> tuple[LbService, ...]:
    """The node's BPF service map, frontends with their backends in slot order."""
    svc_fd = libbpf.obj_get(str(pins / "maps" / "lb4_services"))
    be_fd = libbpf.obj_get(str(pins / "maps" / "lb4_backends"))
    try:
        slots: dict[tuple[str, int, str], dict[int, tuple[int, int, int]]] = {}
        for raw_key, raw_value in libbpf.map_items(svc_fd, LB4_KEY.size, LB4_SERVICE.size):
            addr, port, slot, proto = LB4_KEY.unpack(raw_key)
            backend_id, count, rev_nat = LB4_SERVICE.unpack(raw_value)
            frontend = (
                socket.inet_ntoa(addr),
                struct.unpack("!H", port)[0],
                PROTOCOL_NAMES.get(proto, str(proto)),
            )
            slots.setdefault(frontend, {})[slot] = (backend_id, count, rev_nat)
        result = []
        for (addr, port, proto), by_slot in sorted(slots.items()):
            backends = []
            for slot in sorted(s for s in by_slot if s > 0):
                backend_id = by_slot[slot][0]
                raw = libbpf.map_lookup(be_fd, struct.pack("=I", backend_id), LB4_BACKEND.size)
                if raw is None:
                    continue
                (
                    b_addr,
                    b_port,
                    b_proto,
                ) = LB4_BACKEND.unpack(raw)
                backends.append(
                    LbBackend(
                        slot,
                        backend_id,
                        socket.inet_ntoa(b_addr),
                        struct.unpack("!H", b_port)[0],
                        PROTOCOL_NAMES.get(b_proto, str(b_proto)),
                    )
                )
            rev_nat = by_slot.get(0, (0, 0, 0))[2]
            result.append(LbService(addr, port, proto, rev_nat, tuple(backends)))
        return tuple(result)
    finally:
        os.close(svc_fd)
        os.close(be_fd)


def node_bpf(state: LabState, node: str, netns: str) -> NodeBpf:
    """One node's attachments and service map, read from the kernel (needs root)."""
    pins = node_pins(state.prefix, node)
    counters = _counters(pins)
    links: list[BpfLink] = []
    with entered(netns):
        if state.bpf_attach == "tcx":
            for path in sorted((pins / "links").iterdir()):
                link_id, prog_id, ifindex, attach_type = tcx_link(path)
                name = prog_name(prog_id)
                seen, translated = counters.get((ifindex, HOOKS.get(name, 0)), (0, 0))
                ifname = socket.if_indextoname(ifindex)
                links.append(
                    BpfLink("tcx", link_id, prog_id, name, ifindex, ifname, attach_type, seen, translated)
                )
        else:
            for ifindex, ifname in socket.if_nameindex():
                for ingress in (True, False):
                    filter_prog = libbpf.tc_query(ifindex, ingress)
                    if filter_prog is None:
                        continue
                    name = prog_name(filter_prog)
                    seen, translated = counters.get((ifindex, HOOKS.get(name, 0)), (0, 0))
                    where = "clsact/ingress" if ingress else "clsact/egress"
                    links.append(
                        BpfLink("tc", None, filter_prog, name, ifindex, ifname, where, seen, translated)
                    )
    links.sort(key=lambda link: (link.link_id or 0, link.ifindex, link.direction))
    return NodeBpf(node, state.bpf_attach, tuple(links), services(pins))


def lab_bpf(state: LabState) -> LabBpf:
    """Every node of a lab; a node that cannot be read says why and the others still come back."""
    nodes = []
    if state.datapath == "ebpf":
        for node in state.nodes:
            try:
                nodes.append(node_bpf(state, node.name, node.netns))
            except OSError as exc:
                nodes.append(NodeBpf(node.name, state.bpf_attach, error=str(exc)))
    return LabBpf(state.prefix, state.datapath, state.bpf_attach, tuple(nodes))
