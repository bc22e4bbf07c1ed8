"""A JourneyReport as plain lines: what `labyrinth journey` prints (the TUI shows the same, styled)."""

from __future__ import annotations

from labyrinth_tui.journey.hops import Hop, Journey
from labyrinth_tui.journey.report import JourneyReport


def micros(seconds: float | None) -> str:
    return "" if seconds is None else f"+{seconds * 1e6:.0f}µs"


def hop_line(hop: Hop) -> str:
    """'node-1 cilium_vxlan  egress  +30µs  10.0.1.15:38430 → 10.0.2.215:9999  DNAT … VNI 2'."""
    notes = [c.text for c in hop.changes]
    if hop.vni is not None and not hop.changes:
        notes.append(f"VNI {hop.vni}")
    if hop.last_seen:
        notes.append("✗ last seen here")
    return "  ".join(
        [
            f"{hop.node:<7} {hop.interface:<16} {hop.direction!s:<8} {micros(hop.since_previous):>9}",
            f"{hop.src} → {hop.dst}",
            *notes,
        ]
    )


def clock_line(report: JourneyReport) -> str:
    st = report.stitched
    parts = [f"{node} {c.offset * 1e6:+.0f}µs ({c.method})" for node, c in sorted(st.clock_offsets.items())]
    return f"clocks vs {st.reference_node}: " + (", ".join(parts) or "one node")


def journey_lines(report: JourneyReport) -> list[str]:
    lines = [
        f"{report.cluster}: {report.client.name} → {report.service}:{report.service_port}",
        clock_line(report),
    ]
    lines.append(
        "captures: "
        + ", ".join(f"{s.node}/{s.interface} {s.state} ({s.packets} pkt)" for s in report.streams)
    )
    dns = report.dns
    lines.append("")
    lines.append(f"DNS: {' → '.join(dns.walk) or 'no query seen'}")
    for e in dns.exchanges:
        lines.append(f"  {e.qtype or '?':<5} {e.name}  {e.status}{'  ' + e.answer if e.answer else ''}")
    hs = report.handshake
    if hs is None:
        lines.append("no handshake seen")
        return lines + [f"problem: {p}" for p in report.problems]
    for label, journey in (("SYN", hs.syn), ("SYN-ACK", hs.syn_ack), ("ACK", hs.ack)):
        lines.append("")
        lines += _journey_block(report, label, journey)
    lines += service_map_lines(report)
    if hs.stalled:
        lines += ["", f"✗ {hs.stalled}"]
    for p in report.problems:
        lines.append(f"problem: {p}")
    return lines


def _journey_block(report: JourneyReport, label: str, journey: Journey | None) -> list[str]:
    if journey is None:
        return [f"{label}: not seen"]
    out = [f"{label}: {len(journey.hops)} hops, {journey.duration * 1e6:.0f}µs"]
    for hop in journey.hops:
        out.append("  " + hop_line(hop))
        out += [f"      evidence: {e}" for e in report.hop_evidence(journey, hop)]
    return out


def service_map_lines(report: JourneyReport) -> list[str]:
    """Each Cilium agent's entry for the service (nothing where Cilium is not the CNI)."""
    out: list[str] = []
    for m in report.service_maps:
        out += ["", f"Cilium service map on {m.node} ({m.agent}{', ' + m.command if m.command else ''}):"]
        out += [f"  {line}" for line in m.lines]
        if m.problem:
            out.append(f"  ✗ {m.problem}")
    return out
