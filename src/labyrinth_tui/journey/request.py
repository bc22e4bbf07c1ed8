"""JourneyRequest: the two ends a person chose (client pod, target service or pod, port, proto, payload)."""

from __future__ import annotations

from dataclasses import dataclass

from labyrinth_tui.journey.article import CLIENT_NAMESPACE, CLIENT_POD, PAYLOAD, PORT, SERVICE
from labyrinth_tui.model.topology import Topology

PROTOCOLS = ("tcp", "udp")


class RequestError(ValueError):
    """The ends cannot be read or found; the message says which and what exists instead."""


@dataclass(frozen=True, slots=True)
class JourneyRequest:
    """`--from NS/POD --to SERVICE.NS:PORT | NS/POD:PORT`; the defaults are the article's pair and service.

    A pod is named by `ns/name` or a unique prefix of its name (`wrk-1/node-wrk-1-ubuntu24` finds the
    deployment's pod `node-wrk-1-ubuntu24-684f7d8fd6-2zncq`). A target with a `/` is a pod, else a service.
    """

    client: str = f"{CLIENT_NAMESPACE}/{CLIENT_POD}"
    target: str = SERVICE
    port: int | None = PORT  # None: the service's only port of `proto`
    proto: str = "tcp"
    payload: str = PAYLOAD

    @property
    def target_is_pod(self) -> bool:
        return "/" in self.target

    @property
    def text(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.client} → {self.target}{port}/{self.proto}"

    @classmethod
    def parse(
        cls,
        client: str | None = None,
        to: str | None = None,
        proto: str = "tcp",
        payload: str | None = None,
    ) -> JourneyRequest:
        """From the CLI's words; RequestError with the rule broken."""
        base = cls()
        if proto not in PROTOCOLS:
            raise RequestError(f"--proto {proto!r}: use tcp or udp")
        target, port = base.target, base.port
        if to is not None:
            target, port = parse_target(to)
        if client is not None and "/" not in client:
            raise RequestError(f"--from {client!r}: give the pod as NAMESPACE/POD")
        text = payload if payload is not None else base.payload
        if not text.endswith("\n"):
            text += "\n"  # the server reads one line
        return cls(client or base.client, target, port, proto, text)


def parse_target(to: str) -> tuple[str, int | None]:
    """`SERVICE.NS:PORT`, `NS/POD:PORT` (or without `:PORT`) → (target, port)."""
    name, sep, port_text = to.rpartition(":")
    if not sep:
        name, port_text = to, ""
    if not name or any(c.isspace() for c in name):
        raise RequestError(f"--to {to!r}: use SERVICE.NAMESPACE:PORT or NAMESPACE/POD:PORT")
    if "/" not in name and "." not in name:
        raise RequestError(f"--to {to!r}: a service is SERVICE.NAMESPACE (a pod is NAMESPACE/POD)")
    if not port_text:
        return name, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RequestError(f"--to {to!r}: the port must be 1-65535")
    return name, int(port_text)


def target_choices(topology: Topology) -> list[str]:
    """What `--to` can name in this topology, for completion: each service port as `SERVICE.NS:PORT`,
    each pod as `NS/POD:PORT` for the ports a service sends it to (`NS/POD:` when none is known)."""
    services = [f"{s.name}.{s.namespace}:{p.port}" for s in topology.services for p in s.ports]
    pods = []
    for _, pod in topology.pods():
        ports = sorted({p.target_port for s in topology.services if pod.ip in s.endpoints for p in s.ports})
        pods += [f"{pod.qualified_name}:{port}" for port in ports] or [f"{pod.qualified_name}:"]
    return sorted(set(services)) + sorted(set(pods))
