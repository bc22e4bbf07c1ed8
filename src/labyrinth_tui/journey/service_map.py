"""A Cilium agent's service map (`cilium-dbg bpf lb list`) narrowed to the journey's service: its backends.

    SERVICE ADDRESS        BACKEND ADDRESS (REVNAT_ID) (SLOT)
    10.105.134.33:9999     0.0.0.0:0 (5) (0) [ClusterIP, non-routable]
                           10.0.2.215:9999 (5) (1)

A service's block is its line and the indented backend lines under it, until the next service.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServiceMap:
    """What the Cilium agent on `node` maps the service to; `problem` when it could not be read."""

    node: str
    agent: str  # namespace/pod of the agent
    command: str  # the command that answered: `cilium-dbg bpf lb list` or the older `cilium bpf lb list`
    lines: tuple[str, ...] = ()
    problem: str = ""


def service_block(text: str, address: str) -> tuple[str, ...]:
    """The lines of `address`'s service (IP:PORT) in the map's text; () when the map does not have it."""
    block: list[str] = []
    inside = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():  # a service line (or the header)
            inside = line.split()[0] == address
        if inside:
            block.append(line.rstrip())
    return tuple(block)
