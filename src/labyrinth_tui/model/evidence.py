"""Evidence on a node: kube-proxy iptables counters per rule, BPF programs, and what moved between two."""

from __future__ import annotations

from dataclasses import dataclass

from labyrinth_tui.model.bpf import BpfLink, NodeBpf


@dataclass(frozen=True, slots=True)
class RuleCounter:
    """One rule of `iptables-save -c`: its counters, chain, target and kube-proxy comment."""

    table: str
    chain: str
    position: int  # 1-based within its chain, as `iptables -L --line-numbers` numbers it
    packets: int
    bytes: int
    rule: str  # the rule's text after `-A CHAIN`, as iptables-save printed it
    target: str | None  # -j TARGET (or -g)
    comment: str | None  # -m comment --comment "…" (kube-proxy names the service port here)

    @property
    def key(self) -> tuple[str, str, str]:
        """Same rule in two snapshots: table, chain and text (positions shift when rules are added)."""
        return (self.table, self.chain, self.rule)

    @property
    def kube(self) -> bool:
        """A kube-proxy rule: in a KUBE-* chain or jumping into one."""
        return self.chain.startswith("KUBE-") or (self.target or "").startswith("KUBE-")


@dataclass(frozen=True, slots=True)
class ChainCounter:
    """A chain header `:NAME POLICY [p:b]`: the policy counters of a built-in chain ('-' for user chains)."""

    table: str
    name: str
    policy: str
    packets: int
    bytes: int


@dataclass(frozen=True, slots=True)
class IptablesSnapshot:
    chains: tuple[ChainCounter, ...]
    rules: tuple[RuleCounter, ...]

    def kube_rules(self) -> tuple[RuleCounter, ...]:
        return tuple(r for r in self.rules if r.kube)


@dataclass(frozen=True, slots=True)
class BpfAttachment:
    """A BPF program attached to an interface (tcx, tc clsact or xdp), as bpftool reports it."""

    interface: str  # devname, or "ifindex N" when bpftool only gave the index
    ifindex: int | None
    hook: str  # "tcx", "tc", "xdp"
    direction: str  # "ingress", "egress" or "" (xdp)
    program: str  # the program's name
    prog_id: int | None


@dataclass(frozen=True, slots=True)
class NodeEvidence:
    """What one node showed at one moment; problems say what could not be read (and why)."""

    node: str
    iptables: IptablesSnapshot | None
    bpf: tuple[BpfAttachment, ...]
    problems: tuple[str, ...] = ()
    datapath: NodeBpf | None = None  # the node's tc/tcx programs with their counters, where readable


@dataclass(frozen=True, slots=True)
class CounterMove:
    """A rule whose counters moved between two snapshots."""

    rule: RuleCounter  # as it was after
    packets: int  # delta
    bytes: int

    @property
    def text(self) -> str:
        what = self.rule.comment or self.rule.rule
        target = f" → {self.rule.target}" if self.rule.target else ""
        return f"+{self.packets} pkt {self.rule.chain}{target}  /* {what} */"


@dataclass(frozen=True, slots=True)
class ProgramMove:
    """One tc/tcx program on one device: what it counted between the two snapshots (0 included)."""

    link: BpfLink  # as it was after
    seen: int
    translated: int

    @property
    def text(self) -> str:
        """'eBPF tcx/ingress cil_from_container #812: +14 pkt, +9 translated' (short: it sits by a hop)."""
        translated = f", +{self.translated} translated" if self.translated else ""
        return (
            f"eBPF {self.link.kind}/{self.link.direction} {self.link.prog_name} #{self.link.prog_id}:"
            f" +{self.seen} pkt{translated}"
        )


@dataclass(frozen=True, slots=True)
class EvidenceDiff:
    """One node's evidence before and after the traffic: kube-proxy rules that counted it, BPF programs."""

    node: str
    moved: tuple[CounterMove, ...]  # kube-proxy rules only, in iptables-save order
    bpf: tuple[BpfAttachment, ...]  # attachments after the traffic
    problems: tuple[str, ...] = ()
    kube: tuple[CounterMove, ...] = ()  # every kube-proxy rule after, with its delta (0 included)
    programs: tuple[ProgramMove, ...] = ()  # every tc/tcx program after, with its deltas (0 included)

    @property
    def ebpf(self) -> bool:
        """The node's services are translated by BPF programs (the lab's ebpf datapath, Cilium's)."""
        return any(p.link.prog_name == "cil_from_container" for p in self.programs)

    def for_service(self, namespace: str, name: str, port_name: str | None = None) -> tuple[CounterMove, ...]:
        """The moved rules whose kube-proxy comment names this service (and port, when given)."""
        head = f"{namespace}/{name}" + (f":{port_name}" if port_name else "")
        return tuple(m for m in self.moved if m.rule.comment and _names(m.rule.comment, head, port_name))

    def on_interface(self, interface: str) -> tuple[BpfAttachment, ...]:
        return tuple(a for a in self.bpf if a.interface == interface)

    def programs_on(self, interface: str) -> tuple[ProgramMove, ...]:
        return tuple(p for p in self.programs if p.link.ifname == interface)

    def service_rules(
        self, namespace: str, name: str, port_name: str | None = None
    ) -> tuple[CounterMove, ...]:
        """Every kube-proxy rule naming this service, moved or not (its KUBE-SERVICES → KUBE-SVC → DNAT)."""
        head = f"{namespace}/{name}" + (f":{port_name}" if port_name else "")
        return tuple(m for m in self.kube if m.rule.comment and _names(m.rule.comment, head, port_name))


def _names(comment: str, head: str, port_name: str | None) -> bool:
    if not comment.startswith(head):
        return False
    rest = comment[len(head) :]
    # "wrk-2/svc:tcp-9999 cluster IP" names it; "wrk-2/svc-other…" does not
    return rest == "" or rest[0] in " " or (port_name is None and rest[0] == ":")


def diff_evidence(before: NodeEvidence, after: NodeEvidence) -> EvidenceDiff:
    """The kube-proxy rules whose counters went up between `before` and `after` (a rule new in after counts
    from zero); counters that went down (a flush or restore in between) are reported as a problem."""
    problems = list(dict.fromkeys((*before.problems, *after.problems)))
    kube: list[CounterMove] = []
    if before.iptables is not None and after.iptables is not None:
        old = {r.key: r for r in before.iptables.rules}
        for rule in after.iptables.kube_rules():
            prev = old.get(rule.key)
            dp = rule.packets - (prev.packets if prev else 0)
            db = rule.bytes - (prev.bytes if prev else 0)
            if dp < 0 or db < 0:
                problems.append(f"counters of {rule.chain} #{rule.position} went down: reset in between?")
            kube.append(CounterMove(rule, max(dp, 0), max(db, 0)))
    moved = tuple(m for m in kube if m.packets or m.bytes)
    programs = _program_moves(before.datapath, after.datapath)
    return EvidenceDiff(after.node, moved, after.bpf, tuple(problems), tuple(kube), programs)


def _program_moves(before: NodeBpf | None, after: NodeBpf | None) -> tuple[ProgramMove, ...]:
    """Each program after with what it counted since before; a program new in after counts from zero."""
    if after is None:
        return ()
    old = {(link.ifname, link.attach_type, link.prog_id): link for link in (before.links if before else ())}
    moves = []
    for link in after.links:
        prev = old.get((link.ifname, link.attach_type, link.prog_id))
        seen = link.seen - (prev.seen if prev else 0)
        translated = link.translated - (prev.translated if prev else 0)
        moves.append(ProgramMove(link, max(seen, 0), max(translated, 0)))
    return tuple(moves)
