"""Evidence probes: `iptables-save -c` and `bpftool -j net|link|prog`: argv, parsers, gathering from a node.

A node's tc/tcx programs with their counters come from a `DatapathReader` where the caller has one (the
lab reads its own pinned links and counter map, see lab/bpf/inspect.py), else from bpftool on the node:
`bpftool -j link show` names a tcx link's device and direction only from bpftool 7.4 on (Debian 12's
7.1 prints `{"id":2325,"type":11,"prog_id":3357}`), so older ones leave the links unplaced and say so;
a program's packets are its `run_cnt` where the kernel counts them (sysctl kernel.bpf_stats_enabled=1).
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from labyrinth_tui.model.bpf import BpfLink, NodeBpf
from labyrinth_tui.model.decode import short
from labyrinth_tui.model.evidence import (
    BpfAttachment,
    ChainCounter,
    IptablesSnapshot,
    NodeEvidence,
    RuleCounter,
)
from labyrinth_tui.nodes.commands import Section, batch_script, new_marker
from labyrinth_tui.nodes.runner import CommandResult, CommandRunner
from labyrinth_tui.probes.discovery import split_sections

__all__ = [
    "EvidenceParseError",
    "NodeReading",
    "bpftool_link_argv",
    "bpftool_net_argv",
    "bpftool_prog_argv",
    "evidence_commands",
    "gather_evidence",
    "iptables_save_argv",
    "parse_bpftool_link",
    "parse_bpftool_net",
    "parse_bpftool_programs",
    "parse_iptables_save",
    "read_node",
]

TABLES: Final = frozenset({"filter", "nat", "mangle", "raw", "security"})
# counters are 64-bit (≤ 20 digits), ASCII: int() of 5000 digits or of other scripts' digits is not a counter
_CHAIN_RE: Final = re.compile(r":(\S+) (\S+) \[(\d{1,20}):(\d{1,20})\]", re.ASCII)
_RULE_RE: Final = re.compile(r"\[(\d{1,20}):(\d{1,20})\] -A (\S+)(?: (.*))?", re.ASCII)
NOT_FOUND: Final = 127  # the shell's "command not found"


class EvidenceParseError(ValueError):
    """Output that is not what the tool prints: which line, and why."""

    def __init__(self, tool: str, line_no: int, line: str, reason: str) -> None:
        # repr makes a control character 4 characters long: cut after it, not before
        super().__init__(f"{tool} line {line_no}: {reason}: {short(repr(line[:120]), 120)}")
        self.tool = tool
        self.line_no = line_no
        self.reason = reason


def iptables_save_argv(table: str = "nat") -> list[str]:
    """`iptables-save -c -t TABLE`: every rule with its [packets:bytes] counters."""
    if table not in TABLES:
        raise ValueError(f"unknown iptables table {table!r}: one of {', '.join(sorted(TABLES))}")
    return ["iptables-save", "-c", "-t", table]


def bpftool_net_argv() -> list[str]:
    """`bpftool -j net`: tc/tcx/xdp programs per interface, with device names."""
    return ["bpftool", "-j", "net"]


def bpftool_link_argv() -> list[str]:
    """`bpftool -j link`: BPF links (tcx attachments are links), by ifindex."""
    return ["bpftool", "-j", "link"]


def bpftool_prog_argv() -> list[str]:
    """`bpftool -j prog show`: every program's id, name and (with bpf_stats_enabled) run_cnt."""
    return ["bpftool", "-j", "prog", "show"]


DatapathReader = Callable[[], Awaitable[NodeBpf]]
TCX_ATTACH_TYPES: Final = ("tcx_ingress", "tcx_egress")


def _option(words: list[str], *names: str) -> str | None:
    for i, word in enumerate(words[:-1]):
        if word in names:
            return words[i + 1]
    return None


def parse_iptables_save(text: str) -> IptablesSnapshot:
    """Chains and rules with counters, from `iptables-save -c` (any number of tables)."""
    chains: list[ChainCounter] = []
    rules: list[RuleCounter] = []
    table: str | None = None
    positions: dict[tuple[str, str], int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:]
            if table not in TABLES:
                raise EvidenceParseError("iptables-save", n, raw, "unknown table")
            continue
        if line == "COMMIT":
            table = None
            continue
        if table is None:
            raise EvidenceParseError("iptables-save", n, raw, "outside a *table … COMMIT block")
        if line.startswith(":"):
            m = _CHAIN_RE.fullmatch(line)
            if not m:
                raise EvidenceParseError("iptables-save", n, raw, "not a chain header ':NAME POLICY [p:b]'")
            chains.append(ChainCounter(table, m[1], m[2], int(m[3]), int(m[4])))
            continue
        m = _RULE_RE.fullmatch(line)
        if not m:
            raise EvidenceParseError("iptables-save", n, raw, "not a rule '[p:b] -A CHAIN …' (was -c given?)")
        body = m[4] or ""
        try:
            words = shlex.split(body)
        except ValueError as exc:
            raise EvidenceParseError("iptables-save", n, raw, f"unbalanced quoting ({exc})") from None
        chain = m[3]
        position = positions[(table, chain)] = positions.get((table, chain), 0) + 1
        target = _option(words, "-j", "--jump", "-g", "--goto")
        comment = _option(words, "--comment")
        rules.append(RuleCounter(table, chain, position, int(m[1]), int(m[2]), body, target, comment))
    if table is not None:
        raise EvidenceParseError("iptables-save", len(text.splitlines()), "", f"table {table} has no COMMIT")
    return IptablesSnapshot(tuple(chains), tuple(rules))


def _json(tool: str, text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        # JSON counts lines by "\n" only (splitlines() would also cut at \r, \x1c, … and miscount)
        line = text.split("\n")[exc.lineno - 1]
        raise EvidenceParseError(tool, exc.lineno, line, exc.msg) from None
    except (ValueError, RecursionError) as exc:  # a number of 5000 digits; nesting deeper than the stack
        raise EvidenceParseError(tool, 1, text[:120], str(exc)[:120] or type(exc).__name__) from None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _hook_direction(kind: str, section: str) -> tuple[str, str]:
    # bpftool prints tc entries as kind "tcx/ingress", "clsact/egress" (tc) or, older, no kind at all
    head, _, direction = kind.partition("/")
    if section == "xdp":
        return "xdp", ""
    return ("tcx" if head == "tcx" else "tc"), direction


def parse_bpftool_net(text: str) -> tuple[BpfAttachment, ...]:
    """tc/tcx/xdp attachments from `bpftool -j net` (`[{"xdp":[],"tc":[],"flow_dissector":[]}]` when none)."""
    data = _json("bpftool net", text)
    if not isinstance(data, list):
        raise EvidenceParseError("bpftool net", 1, text, "expected a JSON list")
    found: list[BpfAttachment] = []
    for block in data:
        if not isinstance(block, dict):
            raise EvidenceParseError("bpftool net", 1, text, "expected objects in the list")
        for section in ("tc", "xdp"):
            entries = block.get(section)
            for entry in entries if isinstance(entries, list) else ():
                if not isinstance(entry, dict):
                    continue
                ifindex = _int(entry.get("ifindex"))
                hook, direction = _hook_direction(str(entry.get("kind", "")), section)
                found.append(
                    BpfAttachment(
                        interface=str(entry.get("devname") or f"ifindex {ifindex}"),
                        ifindex=ifindex,
                        hook=hook,
                        direction=direction or str(entry.get("mode", "")),
                        program=str(entry.get("name", "")),
                        prog_id=_int(entry.get("prog_id", entry.get("id"))),
                    )
                )
    return tuple(found)


def parse_bpftool_link(text: str, names: dict[int, str] | None = None) -> tuple[BpfAttachment, ...]:
    """tcx links from `bpftool -j link` (`[]` when none); names: ifindex → device name, where known."""
    data = _json("bpftool link", text)
    if not isinstance(data, list):
        raise EvidenceParseError("bpftool link", 1, text, "expected a JSON list")
    found: list[BpfAttachment] = []
    for entry in data:
        if not isinstance(entry, dict) or entry.get("type") not in ("tcx", "xdp", "netkit"):
            continue
        ifindex = _int(entry.get("ifindex"))
        attach = str(entry.get("attach_type", ""))
        direction = "ingress" if "ingress" in attach else "egress" if "egress" in attach else ""
        name = (names or {}).get(ifindex or -1) or str(entry.get("devname") or f"ifindex {ifindex}")
        found.append(
            BpfAttachment(name, ifindex, str(entry["type"]), direction, "", _int(entry.get("prog_id")))
        )
    return tuple(found)


def parse_bpftool_programs(node: str, link_text: str, prog_text: str) -> NodeBpf:
    """A node's tcx links with their programs' names and run counts, from `bpftool -j link|prog show`.
    A link bpftool cannot place on a device (bpftool < 7.4) is left out, and the result says how many."""
    links = _json("bpftool link", link_text)
    progs = _json("bpftool prog", prog_text)
    if not isinstance(links, list) or not isinstance(progs, list):
        raise EvidenceParseError("bpftool", 1, link_text[:120], "expected JSON lists")
    by_id = {p.get("id"): p for p in progs if isinstance(p, dict)}
    found: list[BpfLink] = []
    unplaced = 0
    for entry in links:
        if not isinstance(entry, dict) or entry.get("type") not in ("tcx", 11):
            continue
        ifindex, attach = _int(entry.get("ifindex")), str(entry.get("attach_type", ""))
        if ifindex is None or attach not in TCX_ATTACH_TYPES:
            unplaced += 1
            continue
        prog_id = _int(entry.get("prog_id")) or 0
        prog = by_id.get(prog_id) or {}
        found.append(
            BpfLink(
                "tcx", _int(entry.get("id")), prog_id, str(prog.get("name", "?")), ifindex,
                str(entry.get("devname") or f"ifindex {ifindex}"), attach, _int(prog.get("run_cnt")) or 0,
            )
        )  # fmt: skip
    error = (
        f"bpftool cannot name the device of {unplaced} tcx links (it can from 7.4 on): not shown"
        if unplaced
        else ""
    )
    return NodeBpf(node, "tcx", tuple(found), error=error)


async def _read(reader: DatapathReader | None) -> NodeBpf | str | None:
    """The caller's reading of the node's programs, the reason it failed, or None without a reader."""
    if reader is None:
        return None
    try:
        return await reader()
    except OSError as exc:
        return f"BPF programs not read: {exc}"


def _programs(
    node: str, read: NodeBpf | str | None, link: CommandResult, prog: CommandResult
) -> tuple[NodeBpf | None, str]:
    """The node's programs and counters (the reader's, else bpftool's) and a problem to show (or "")."""
    if isinstance(read, str):
        return None, read
    if read is not None:
        return read, read.error
    if link.exit_status != 0 or prog.exit_status != 0:
        return None, ""  # bpftool's absence or failure is reported with `bpftool net`'s
    try:
        found = parse_bpftool_programs(node, link.stdout, prog.stdout)
    except EvidenceParseError as exc:
        return None, str(exc)
    return found, found.error


def _missing(result: CommandResult) -> bool:
    return result.exit_status == NOT_FOUND or "not found" in result.stderr.lower()


@dataclass(frozen=True, slots=True)
class NodeReading:
    """One node's evidence and, for each host veth asked about, whether `ip link` still shows it."""

    evidence: NodeEvidence
    veths: dict[str, bool] = field(default_factory=dict)


def evidence_commands(*, programs: bool, veths: Sequence[str] = ()) -> dict[str, tuple[str, ...]]:
    """The evidence commands of one reading by section name: iptables nat counters, bpftool's
    attachments, bpftool's programs (`programs`: only without the caller's own reader) and an
    `ip -br link` per host veth."""
    tools = {
        "iptables": iptables_save_argv("nat"),
        "bpf-net": bpftool_net_argv(),
        "bpf-link": bpftool_link_argv(),
    }
    tools |= {"bpf-prog": bpftool_prog_argv()} if programs else {}
    tools |= {f"veth-{i}": ["ip", "-br", "link", "show", "dev", veth] for i, veth in enumerate(veths)}
    return {name: tuple(argv) for name, argv in tools.items()}


async def gather_evidence(
    runner: CommandRunner,
    *,
    timeout: float = 15.0,
    privilege: Sequence[str] = (),
    datapath: DatapathReader | None = None,
) -> NodeEvidence:
    """iptables nat counters, BPF attachments and the tc/tcx programs' counters of one node (read_node)."""
    return (await read_node(runner, timeout=timeout, privilege=privilege, datapath=datapath)).evidence


async def read_node(
    runner: CommandRunner,
    *,
    timeout: float = 15.0,
    privilege: Sequence[str] = (),
    datapath: DatapathReader | None = None,
    veths: Sequence[str] = (),
) -> NodeReading:
    """The node's evidence in ONE round trip (one `sh -s` running every command, its output cut by
    markers): each SSH command costs sshd a session, a fork and a shell, 0.1-0.3 s here under load
    (`time` of `NodeSession.run(["true"])`), and the four commands of a reading in four channels took
    0.5-0.9 s for two nodes. A missing tool or unreadable output is a problem on the result, never an
    exception: evidence is shown beside the journey, not required for it. `privilege` prefixes the
    batch (("sudo", "-n") for a non-root login, as captures do); `datapath` reads the programs where
    the caller can (the lab); `veths`: host veths to look for on the node in the same round trip."""
    # bpftool's program list only without a reader: its reading replaces that list, which holds every
    # program of the kernel (on a machine shared by several labs, all of theirs)
    commands = evidence_commands(programs=datapath is None, veths=veths)
    sections = [Section(name, argv, mark_stderr=True) for name, argv in commands.items()]
    marker = new_marker()
    batch, read = await asyncio.gather(
        runner.run(
            [*privilege, "sh", "-s"], input=batch_script(marker, sections), timeout=timeout, check=False
        ),
        _read(datapath),
    )
    out, err = split_sections(batch.stdout, marker).host, split_sections(batch.stderr, marker).host

    def result(name: str) -> CommandResult:
        said, words = out.get(name), err.get(name)
        if said is None or said.status is None:  # the batch never got there (sudo refused, cut short)
            return CommandResult(commands[name], batch.exit_status or -1, "", batch.stderr)
        return CommandResult(commands[name], said.status, said.text, words.text if words else "")

    save, net, link = result("iptables"), result("bpf-net"), result("bpf-link")
    prog = result("bpf-prog") if datapath is None else CommandResult(tuple(bpftool_prog_argv()), 0, "", "")
    shown = {veth: result(f"veth-{i}") for i, veth in enumerate(veths)}
    present = {veth: r.exit_status == 0 and r.stdout.startswith(veth) for veth, r in shown.items()}
    return NodeReading(_evidence(runner.name, save, net, link, prog, read), present)


def _evidence(
    node: str,
    save: CommandResult,
    net: CommandResult,
    link: CommandResult,
    prog: CommandResult,
    read: NodeBpf | str | None,
) -> NodeEvidence:
    programs, program_problem = _programs(node, read, link, prog)
    problems: list[str] = [program_problem] if program_problem else []
    iptables: IptablesSnapshot | None = None
    if save.exit_status != 0:
        problems.append(f"iptables-save failed ({save.exit_status}): {save.stderr.strip()[:200]}")
    else:
        try:
            iptables = parse_iptables_save(save.stdout)
        except EvidenceParseError as exc:
            problems.append(str(exc))
    bpf: list[BpfAttachment] = []
    if _missing(net):
        problems.append("no bpftool on this node: BPF attachments not shown")
    else:
        try:
            bpf.extend(parse_bpftool_net(net.stdout) if net.exit_status == 0 else ())
            names = {a.ifindex: a.interface for a in bpf if a.ifindex is not None}
            seen = {(a.ifindex, a.direction, a.prog_id) for a in bpf}
            if link.exit_status == 0:
                more = parse_bpftool_link(link.stdout, names)
                bpf.extend(a for a in more if (a.ifindex, a.direction, a.prog_id) not in seen)
        except EvidenceParseError as exc:
            problems.append(str(exc))
        if net.exit_status != 0:
            problems.append(f"bpftool net failed ({net.exit_status}): {net.stderr.strip()[:200]}")
    return NodeEvidence(node, iptables, tuple(bpf), tuple(problems), programs)
