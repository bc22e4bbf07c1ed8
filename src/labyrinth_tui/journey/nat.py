"""The service table as NAT: ClusterIP:port ↔ pod IP:targetPort, so one packet is one packet on both sides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from labyrinth_tui.model.topology import Service

Endpoint = tuple[str, int | None]  # (ip, port)


class Flow(NamedTuple):
    """A packet's addresses with every service endpoint written as its ClusterIP:port (the client's view)."""

    l4: str
    src: str
    sport: int | None
    dst: str
    dport: int | None

    def reversed(self) -> Flow:
        return Flow(self.l4, self.dst, self.dport, self.src, self.sport)


def endpoint_text(ip: str, port: int | None) -> str:
    return ip if port is None else f"{ip}:{port}"


class NatTable:
    """Both directions of kube-proxy's (or Cilium's) service translation, from the service table."""

    def __init__(self, services: Sequence[Service]) -> None:
        # (pod ip, targetPort, l4) → (cluster ip, port). An endpoint behind several services maps to the
        # smallest, so the same packet always gets the same canonical form whatever the input order.
        self._backend: dict[tuple[str, int, str], Endpoint] = {}
        # (cluster ip, port, l4) → the endpoints behind it
        self._frontend: dict[tuple[str, int, str], list[Endpoint]] = {}
        self.cluster_ips: frozenset[str] = frozenset(s.cluster_ip for s in services if s.cluster_ip)
        for service in services:
            for port in service.ports:
                l4 = port.protocol.upper()
                front = (service.cluster_ip, port.port, l4)
                backends = self._frontend.setdefault(front, [])
                for ip in service.endpoints:
                    backends.append((ip, port.target_port))
                    key = (ip, port.target_port, l4)
                    mapped = (service.cluster_ip, port.port)
                    current = self._backend.get(key)
                    self._backend[key] = mapped if current is None else min(current, mapped, key=_sortable)
        self._flows: dict[tuple[str, int | None, str, int | None, str], Flow] = {}

    def flow(
        self, src: str, sport: int | None, dst: str, dport: int | None, l4: str
    ) -> Flow:  # hot path: one dict hit per observation once the flow is known
        raw = (src, sport, dst, dport, l4)
        found = self._flows.get(raw)
        if found is None:
            csrc, csport = self.frontend_of(src, sport, l4)
            cdst, cdport = self.frontend_of(dst, dport, l4)
            found = self._flows[raw] = Flow(l4, csrc, csport, cdst, cdport)
        return found

    def frontend_of(self, ip: str, port: int | None, l4: str) -> Endpoint:
        """The ClusterIP:port a pod's ip:targetPort answers for, or the endpoint itself."""
        if port is None:
            return (ip, port)
        return self._backend.get((ip, port, l4), (ip, port))

    def backends_of(self, ip: str, port: int | None, l4: str) -> list[Endpoint]:
        """The pod ip:targetPort endpoints behind a ClusterIP:port (empty when it is not a service)."""
        if port is None:
            return []
        return self._frontend.get((ip, port, l4), [])

    def is_frontend(self, ip: str, port: int | None, l4: str) -> bool:
        return port is not None and (ip, port, l4) in self._frontend

    def is_backend(self, ip: str, port: int | None, l4: str) -> bool:
        return port is not None and (ip, port, l4) in self._backend


def _sortable(endpoint: Endpoint) -> tuple[str, int]:
    return (endpoint[0], -1 if endpoint[1] is None else endpoint[1])
