"""JourneyView: the DNS phase, then SYN / SYN-ACK / ACK as timelines of hops with evidence beside each hop."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from labyrinth_tui.journey.hops import ChangeKind, Hop, Journey
from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.text import clock_line, micros
from labyrinth_tui.journey.tour import TourStep

_CHANGE_CLASS = {
    ChangeKind.DNAT: "-nat",
    ChangeKind.UNDNAT: "-nat",
    ChangeKind.SNAT: "-nat",
    ChangeKind.ENCAP: "-encap",
    ChangeKind.DECAP: "-decap",
}


def packet_detail(hop: Hop) -> str:
    """The packet as this hop's capture saw it (the inline expansion of a hop)."""
    p = hop.packet
    lines = [
        f"#{p.number} on {p.node}/{p.interface}  {p.protocol} {p.length} bytes  "
        f"captured at {hop.captured_time:.6f} (node clock), {hop.time:.6f} corrected",
        p.info,
    ]
    fields = [
        ("ip id", p.ip_id),
        ("flags", p.tcp_flags),
        ("seq", p.seq),
        ("ack", p.ack),
        ("dns id", p.dns_id),
        ("payload hash", p.payload_hash),
    ]
    shown = "  ".join(f"{name} {value}" for name, value in fields if value is not None)
    if shown:
        lines.append(shown)
    if hop.outer is not None:
        lines.append(f"outer UDP {hop.outer}  VXLAN VNI {hop.vni}")
    return "\n".join(lines)


class HopView(Widget, can_focus=True):
    """One hop: where, which way, +µs, src → dst as seen there, what changed; evidence beside; enter opens."""

    BINDINGS = [Binding("enter,space", "toggle_detail", "Packet detail")]

    class Toggled(Message):
        """A hop was expanded to its packet detail, or collapsed."""

        def __init__(self, hop_view: HopView, expanded: bool) -> None:
            super().__init__()
            self.hop_view = hop_view
            self.expanded = expanded

    expanded: reactive[bool] = reactive(False, init=False)

    def __init__(self, hop: Hop, evidence: tuple[str, ...], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hop = hop
        self.evidence = evidence

    def compose(self) -> ComposeResult:
        hop = self.hop
        with Horizontal(classes="hop-row"):
            with Horizontal(classes="hop-head"):
                yield Static(f"{hop.node} {hop.interface}", classes="hop-where", markup=False)
                yield Static(str(hop.direction), classes="hop-direction", markup=False)
                yield Static(micros(hop.since_previous), classes="hop-time", markup=False)
            yield Static(f"{hop.src} → {hop.dst}", classes="hop-addresses", markup=False)
            notes = [c.text for c in hop.changes]
            kinds = " ".join(dict.fromkeys(_CHANGE_CLASS[c.kind] for c in hop.changes))
            if hop.vni is not None and not hop.changes:
                notes.append(f"VXLAN VNI {hop.vni}")
                kinds = "-vni"
            if hop.last_seen:
                notes.append("✗ last seen here")
                kinds += " -vanished"
            # an empty column is "-empty": on a narrow screen (journey.tcss) it takes no line of its own
            empty = "" if notes else " -empty"
            yield Static("\n".join(notes), classes=f"hop-change {kinds}{empty}".strip(), markup=False)
            empty = "" if self.evidence else " -empty"
            yield Static("\n".join(self.evidence), classes=f"hop-evidence{empty}", markup=False)
        yield Static(packet_detail(hop), classes="hop-detail", markup=False)

    def watch_expanded(self, expanded: bool) -> None:
        self.set_class(expanded, "-expanded")  # journey.tcss shows .hop-detail under -expanded
        self.post_message(self.Toggled(self, expanded))

    def action_toggle_detail(self) -> None:
        self.expanded = not self.expanded


class JourneyTimeline(Vertical):
    """One packet of the handshake across both nodes, hop by hop."""

    def __init__(self, label: str, journey: Journey | None, report: JourneyReport, *, id: str | None = None):
        super().__init__(id=id, classes="timeline")
        self.label = label
        self.journey = journey
        self.report = report

    def compose(self) -> ComposeResult:
        j = self.journey
        if j is None:
            yield Static(
                f"{self.label}: not seen on any captured hop", classes="timeline-title -missing", markup=False
            )
            return
        retry = f", transmission {j.transmission + 1}" if j.transmission else ""
        yield Static(
            f"{self.label}  {len(j.hops)} hops in {j.duration * 1e6:.0f}µs{retry}",
            classes="timeline-title",
            markup=False,
        )
        for hop in j.hops:
            yield HopView(hop, self.report.hop_evidence(j, hop))
        missing = j.expected_next
        if missing is not None:
            yield Static(
                f"vanished: expected next on {missing[0]}/{missing[1]}, never seen there",
                classes="timeline-vanished",
                markup=False,
            )


def dns_text(report: JourneyReport) -> Group:
    """The DNS phase; an exchange that wraps (a narrow screen, the long names) wraps under its indent."""
    dns = report.dns
    if not dns.exchanges:
        return Group(Text("no DNS query seen on the captured hops"))
    lines: list[RenderableType] = [Text(f"search walk: {' → '.join(dns.walk)}")]
    for e in dns.exchanges:
        answer = f"  {e.answer}" if e.answer else ""
        lines.append(
            Padding(Text(f"{e.qtype or '?':<5} {e.name}  {e.status}{answer}"), (0, 0, 0, 2), expand=False)
        )
    found = dns.answer
    lines.append(Text(f"answer: {found.name} A {found.answer}" if found else "answer: none"))
    return Group(*lines)


def header_text(report: JourneyReport) -> str:
    ready = ", ".join(f"{s.node}/{s.interface} {s.state}" for s in report.streams)
    return (
        f"{report.client.namespace}/{report.client.name} → {report.service}:{report.service_port}"
        f"  ({report.cluster})\n{clock_line(report)}\ncaptures: {ready}"
    )


class JourneyView(VerticalScroll):
    """The whole report: header with clock offsets, the DNS phase, then the three handshake timelines."""

    def __init__(self, report: JourneyReport, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report = report

    def compose(self) -> ComposeResult:
        report = self.report
        yield Static(header_text(report), id="journey-header", markup=False)
        dns = Static(dns_text(report), id="journey-dns", classes="pane")
        dns.border_title = "DNS"
        yield dns
        hs = report.handshake
        for label, journey in (
            ("SYN", hs.syn if hs else None),
            ("SYN-ACK", hs.syn_ack if hs else None),
            ("ACK", hs.ack if hs else None),
        ):
            yield JourneyTimeline(label, journey, report, id=f"timeline-{label.lower()}")
        for problem in report.problems:
            yield Static(f"problem: {problem}", classes="journey-problem", markup=False)


class TourStepView(Static):
    """One step of the tour: ✓ or ✗, the article's claim, and what was actually seen (wrapping under
    its own indent on a narrow screen)."""

    def __init__(self, step: TourStep) -> None:
        super().__init__(
            Group(
                Text(f"{step.mark} {step.title}"),
                Padding(Text(f"seen: {step.seen}"), (0, 0, 0, 2), expand=False),
            ),
            classes="tour-step " + ("-passed" if step.passed else "-failed"),
        )
        self.step = step
