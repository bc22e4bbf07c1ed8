"""The byte layouts of the datapath's maps (csrc/lib/common.h) and the service table built from the spec."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from labyrinth_tui.lab.spec import LabSpec

PROTOCOLS = {"TCP": 6, "UDP": 17}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
# struct lb4_key: address and port in network order, slot and the rest in the host's
LB4_KEY = struct.Struct("=4s2sHB3x")
LB4_SERVICE = struct.Struct("=IHH")
LB4_BACKEND = struct.Struct("=4s2sBx")
CT4_KEY = struct.Struct("=4s4s2s2sB3x")
CT4_ENTRY = struct.Struct("=4s2sH")
COUNTER_KEY = struct.Struct("=II")
COUNTER = struct.Struct("=QQ")


def _addr(ip: str) -> bytes:
    return socket.inet_aton(ip)


def _port(port: int) -> bytes:
    return struct.pack("!H", port)


@dataclass(frozen=True, slots=True)
class Backend:
    backend_id: int
    address: str
    port: int
    proto: str


@dataclass(frozen=True, slots=True)
class Frontend:
    """One ClusterIP:port/proto and its backends in slot order (slot 1 is backends[0])."""

    cluster_ip: str
    port: int
    proto: str
    rev_nat_index: int
    name: str  # namespace/service:port-name, kube-proxy's servicePortName
    backends: tuple[Backend, ...]


def frontends(spec: LabSpec) -> list[Frontend]:
    """The lab's services as the BPF service table holds them: the same on every node."""
    ids: dict[tuple[str, int, str], int] = {}
    result: list[Frontend] = []
    for service in spec.services:
        endpoints = spec.endpoints(service)
        for port in service.ports:
            backends = []
            for pod in endpoints:
                ident = (pod.ip, port.target_port, port.protocol)
                backend_id = ids.setdefault(ident, len(ids) + 1)
                backends.append(Backend(backend_id, pod.ip, port.target_port, port.protocol))
            name = f"{service.namespace}/{service.name}:{port.name}"
            result.append(
                Frontend(service.cluster_ip, port.port, port.protocol, len(result) + 1, name, tuple(backends))
            )
    return result


def service_entries(frontend: Frontend) -> list[tuple[bytes, bytes]]:
    """lb4_services entries: slot 0 counts the backends, slot i names backend i."""
    proto = PROTOCOLS[frontend.proto]
    vip, port = _addr(frontend.cluster_ip), _port(frontend.port)
    count = len(frontend.backends)
    entries = [(LB4_KEY.pack(vip, port, 0, proto), LB4_SERVICE.pack(0, count, frontend.rev_nat_index))]
    for slot, backend in enumerate(frontend.backends, start=1):
        entries.append(
            (
                LB4_KEY.pack(vip, port, slot, proto),
                LB4_SERVICE.pack(backend.backend_id, 0, frontend.rev_nat_index),
            )
        )
    return entries


def backend_entry(backend: Backend) -> tuple[bytes, bytes]:
    value = LB4_BACKEND.pack(_addr(backend.address), _port(backend.port), PROTOCOLS[backend.proto])
    return struct.pack("=I", backend.backend_id), value


def counter_key(ifindex: int, hook: int) -> bytes:
    return COUNTER_KEY.pack(ifindex, hook)


def unpack_counter_key(raw: bytes) -> tuple[int, int]:
    ifindex, hook = COUNTER_KEY.unpack(raw)
    return int(ifindex), int(hook)


def unpack_counter(raw: bytes) -> tuple[int, int]:
    seen, translated = COUNTER.unpack(raw)
    return int(seen), int(translated)


def ct_key(backend: str, client: str, backend_port: int, client_port: int, proto: str) -> bytes:
    return CT4_KEY.pack(
        _addr(backend), _addr(client), _port(backend_port), _port(client_port), PROTOCOLS[proto]
    )


def unpack_ct_entry(raw: bytes) -> tuple[str, int]:
    vip, port, _ = CT4_ENTRY.unpack(raw)
    return socket.inet_ntoa(vip), struct.unpack("!H", port)[0]
