"""The article's node ↔ node check: from every node, the ports the cluster needs on every other node.

The article tries `nc` between every pair of VMs before installing anything (a firewall is the usual
culprit). A pair *passes* when the network lets the probe through: the port answered (open), or the
host refused it (closed: nothing listens yet — before `kubeadm init` 6443 and 10250 have no listener,
and that is fine). It *fails* when nothing answered in time (filtered: a firewall drops it) or the
host could not be reached at all. UDP cannot tell an open port from a dropped one: silence is
"open|filtered" (a pass, said as such); only an ICMP port-unreachable proves the way is open (closed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from labyrinth_tui.nodes.commands import port_probe
from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.runner import CommandRunner

PROBE_SECONDS: Final = 2.0


@dataclass(frozen=True, slots=True)
class ClusterPort:
    port: int
    proto: str
    why: str
    control_plane_only: bool = False

    @property
    def label(self) -> str:
        return f"{self.port}/{self.proto}"


CLUSTER_PORTS: Final = (
    ClusterPort(22, "tcp", "SSH"),
    ClusterPort(6443, "tcp", "API server", control_plane_only=True),
    ClusterPort(8472, "udp", "VXLAN, Cilium's tunnel"),
    ClusterPort(10250, "tcp", "kubelet"),
)


class Verdict(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # refused: the host answered, nothing listens
    OPEN_FILTERED = "open|filtered"  # UDP silence
    FILTERED = "filtered"  # no answer in time
    UNREACHABLE = "unreachable"
    ERROR = "error"

    @property
    def passes(self) -> bool:
        return self in (Verdict.OPEN, Verdict.CLOSED, Verdict.OPEN_FILTERED)


@dataclass(frozen=True, slots=True)
class NodeAddress:
    name: str
    address: str  # what the other nodes reach it by (its internal IP)
    control_plane: bool = False


@dataclass(frozen=True, slots=True)
class PairResult:
    source: str
    target: str
    port: ClusterPort
    verdict: Verdict
    reason: str

    @property
    def passes(self) -> bool:
        return self.verdict.passes


def probes_for(nodes: Sequence[NodeAddress]) -> list[tuple[NodeAddress, NodeAddress, ClusterPort]]:
    """Every ordered pair of distinct nodes × the ports the target needs (6443: the control plane's)."""
    return [
        (src, dst, port)
        for src in nodes
        for dst in nodes
        if src.name != dst.name
        for port in CLUSTER_PORTS
        if dst.control_plane or not port.control_plane_only
    ]


def read_probe(output: str, port: ClusterPort, seconds: float = PROBE_SECONDS) -> tuple[Verdict, str]:
    """What `port_probe` printed ("<tool> <status>", then the tool's words) → the verdict and why."""
    head, _, said = output.partition("\n")
    tool, _, status_text = head.strip().partition(" ")
    words = " ".join(said.split())
    status = int(status_text) if status_text.lstrip("-").isdigit() else -1
    low = words.lower()
    if tool == "none":
        return Verdict.ERROR, "the node has neither bash with `timeout` nor nc to probe with"
    if status == 0:
        return Verdict.OPEN, "answered" if port.proto == "tcp" else "a reply came back"
    if "refused" in low:
        if port.proto == "udp":
            return Verdict.CLOSED, "ICMP port unreachable: the host answered, nothing listens"
        return Verdict.CLOSED, "refused: the host answered, nothing listens"
    if "no route" in low or "unreachable" in low:
        return Verdict.UNREACHABLE, f"no route to the host ({tool}: {words})"
    if port.proto == "udp" and (status > 128 or (tool == "nc" and not words)):
        return Verdict.OPEN_FILTERED, f"no ICMP port unreachable within {seconds:g} s"
    if status == 124 or "timed out" in low or "timeout" in low:
        return Verdict.FILTERED, f"no answer within {seconds:g} s (a firewall dropping it?)"
    return Verdict.ERROR, f"{tool} exited {status}: {words or 'nothing said'}"


async def check_nodes(
    sessions: Mapping[str, CommandRunner], nodes: Sequence[NodeAddress], seconds: float = PROBE_SECONDS
) -> list[PairResult]:
    """Each probe runs on its source node over its session, all at once; a node SSH cannot reach gives
    an error for each of its probes (the others still run)."""

    async def one(src: NodeAddress, dst: NodeAddress, port: ClusterPort) -> PairResult:
        session = sessions.get(src.name)
        if session is None:
            return PairResult(src.name, dst.name, port, Verdict.ERROR, "no SSH session to the source node")
        # silence is asked twice, the second time thrice as long: on a loaded node the probe's own start
        # can eat the first wait (seen at load 26 on 2 cores: RSTs within µs, "filtered" after 2 s)
        for wait in (seconds, seconds * 3):
            argv = port_probe(port.proto, dst.address, port.port, wait)
            try:
                result = await session.run(argv, check=False, timeout=wait + 20)
            except NodeError as exc:
                return PairResult(src.name, dst.name, port, Verdict.ERROR, f"{src.name}: {exc.reason}")
            verdict, why = read_probe(result.stdout, port, wait)
            if verdict is not Verdict.FILTERED:
                break
        return PairResult(src.name, dst.name, port, verdict, why)

    return list(await asyncio.gather(*(one(*p) for p in probes_for(nodes))))


LEGEND: Final = (
    "open: answered · closed (nothing listens): the host refused it, so the way is open\n"
    "open|filtered: UDP silence, open or dropped · filtered (no answer): a firewall? · ✗ fails the check\n"
)


def matrix_lines(nodes: Sequence[NodeAddress], results: Sequence[PairResult]) -> list[str]:
    """One matrix per port (rows: from, columns: to), then each failure with its reason."""
    by = {(r.source, r.target, r.port): r for r in results}
    names = [n.name for n in nodes]
    width = max([17, *(len(n) + 2 for n in names)])
    out: list[str] = []
    for port in CLUSTER_PORTS:
        if not any(r.port == port for r in results):
            continue
        only = " — to the control plane only" if port.control_plane_only else ""
        out.append(f"{port.label} ({port.why}){only}")
        out.append(("  from \\ to".ljust(width + 2) + "".join(n.ljust(width) for n in names)).rstrip())
        for src in names:
            cells = []
            for dst in names:
                r = by.get((src, dst, port))
                cell = "·" if r is None else f"{'✓' if r.passes else '✗'} {r.verdict}"
                cells.append(cell.ljust(width))
            out.append((f"  {src}".ljust(width + 2) + "".join(cells)).rstrip())
        out.append("")
    out.append(LEGEND)
    failed = [r for r in results if not r.passes]
    for r in failed:
        out.append(f"✗ {r.source} → {r.target} {r.port.label} ({r.port.why}): {r.verdict}: {r.reason}")
    passed = len(results) - len(failed)
    every = "" if failed else ": every node reaches every other"
    out.append(f"{passed}/{len(results)} probes passed{every}")
    return out
