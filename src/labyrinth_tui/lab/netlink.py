"""A pod's side of its veth over rtnetlink from this process: no `ip -n` process per pod.

`ip -n NS …` unshares a mount namespace for every call, copying a mount table that holds every
/run/netns mount, so N pods cost O(N) each and O(N²) in all (603 pods: 4.1 s of links, and every
`ip -n` on the machine 2.8 → 7.7 ms while the lab is up). A netlink socket opened while this thread
is inside the pod's netns works on that netns for its whole life: the pod's five changes go out in
one send and their acknowledgements come back in one read, with no process started.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

from labyrinth_tui.lab.netns import entered
from labyrinth_tui.lab.spec import LabSpec, PodSpec
from labyrinth_tui.lab.state import LabError

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
IFF_UP = 0x1
IFLA_AF_SPEC, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE = 26, 8, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_METRICS = 1, 4, 5, 8
RTAX_MTU = 2
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
LOOPBACK_INDEX = 1  # lo is always interface 1 of a new netns
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _ip(address: str) -> bytes:
    return ipaddress.IPv4Address(address).packed


def link_up(index: int) -> tuple[int, bytes]:
    """RTM_NEWLINK setting IFF_UP on interface `index` (ifinfomsg: family, type, index, flags, change)."""
    return RTM_NEWLINK, struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)


def addrgen_none(index: int) -> tuple[int, bytes]:
    """RTM_NEWLINK: no IPv6 link-local address on interface `index` (`ip link set DEV addrgenmode none`).

    With no IPv6 address the interface sends nothing of its own (no DAD, no router solicitation; its
    only group, all-nodes, is never reported): a pod's capture holds only the traffic it was sent.
    """
    inet6 = _attr(socket.AF_INET6, _attr(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE])))
    return RTM_NEWLINK, struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, 0, 0) + _attr(IFLA_AF_SPEC, inet6)


def address_add(index: int, address: str) -> tuple[int, bytes]:
    """RTM_NEWADDR: `address`/32 on interface `index`."""
    body = struct.pack("=BBBBI", socket.AF_INET, 32, 0, RT_SCOPE_UNIVERSE, index)
    return RTM_NEWADDR, body + _attr(IFA_LOCAL, _ip(address)) + _attr(IFA_ADDRESS, _ip(address))


def route_add(index: int, dst: str | None, gateway: str | None = None, mtu: int = 0) -> tuple[int, bytes]:
    """RTM_NEWROUTE in the main table: `dst`/32 on the link (no gateway), or the default via `gateway`."""
    scope = RT_SCOPE_LINK if gateway is None else RT_SCOPE_UNIVERSE
    dst_len = 32 if dst is not None else 0
    body = struct.pack(
        "=BBBBBBBBI", socket.AF_INET, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0
    )
    if dst is not None:
        body += _attr(RTA_DST, _ip(dst))
    if gateway is not None:
        body += _attr(RTA_GATEWAY, _ip(gateway))
    body += _attr(RTA_OIF, struct.pack("=I", index))
    if mtu:
        body += _attr(RTA_METRICS, _attr(RTAX_MTU, struct.pack("=I", mtu)))
    return RTM_NEWROUTE, body


def pod_requests(spec: LabSpec, pod: PodSpec, eth0: int) -> list[tuple[int, bytes]]:
    """A pod as Cilium wires it, as netlink requests: lo and eth0 up (eth0 with no IPv6 address, set
    before it is up), the pod's /32 on eth0, a link route to the node's gateway, the default route via
    it with the pod route MTU (`ip route`: `10.0.1.49 dev eth0 scope link`, `default via 10.0.1.49 dev
    eth0 mtu 1410`).

    Why not `net.ipv6.conf.*.disable_ipv6` in each pod: a /proc/sys/net lookup walks every live
    netns's entry for that path, so writing those two sysctls grew from 0.44 to 1.72 ms of CPU per pod
    between the first 500 namespaces and 2500–3000, where the namespace itself stays at 0.4–0.6 ms
    (`bench/lab_scale.py --netns-only`; docs/lab-facts.md)."""
    gateway = spec.node(pod.node).gateway
    return [
        link_up(LOOPBACK_INDEX),
        addrgen_none(eth0),
        link_up(eth0),
        address_add(eth0, pod.ip),
        route_add(eth0, gateway),
        route_add(eth0, None, gateway, spec.pod_route_mtu),
    ]


def send_all(sock: socket.socket, requests: list[tuple[int, bytes]]) -> None:
    """Send every request at once, each acknowledged; raise on the first refusal."""
    ask, create = NLM_F_REQUEST | NLM_F_ACK, NLM_F_CREATE | NLM_F_EXCL
    out = b"".join(
        # a link is changed (it exists); an address or a route is created and must not exist yet
        _HEADER.pack(16 + len(body), kind, ask if kind == RTM_NEWLINK else ask | create, seq, 0) + body
        for seq, (kind, body) in enumerate(requests, 1)
    )
    sock.sendall(out)
    acked: set[int] = set()
    while len(acked) < len(requests):
        data = sock.recv(65536)
        at = 0
        while at + 16 <= len(data):
            length, kind, _flags, seq, _pid = _HEADER.unpack_from(data, at)
            if kind == NLMSG_ERROR:
                error = struct.unpack_from("=i", data, at + 16)[0]
                if error:
                    raise OSError(-error, f"netlink request {seq}: {os.strerror(-error)}")
                acked.add(seq)
            at += max(16, (length + 3) & ~3)


def configure_pod(spec: LabSpec, pod: PodSpec) -> None:
    """The pod's side inside its netns, from this thread (run it in a worker thread: setns is per thread)."""
    try:
        with entered(spec.pod_netns(pod)):
            eth0 = socket.if_nametoindex("eth0")
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        with sock:
            sock.bind((0, 0))
            send_all(sock, pod_requests(spec, pod, eth0))
    except OSError as exc:
        raise LabError(f"pod {pod.qualified_name}: {exc.strerror or exc}") from exc
