"""Evidence parsers on real `iptables-save -c -t nat` output of the lab's node-1 around the article's traffic.

Also bpftool JSON (empty as in the lab, and with tcx/tc attachments), malformed input, and a fake runner.
"""

from __future__ import annotations

import asyncio
import os
import re
from asyncio.subprocess import PIPE
from collections.abc import Sequence
from pathlib import Path

import pytest

from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.evidence import NodeEvidence, diff_evidence
from labyrinth_tui.nodes.runner import CommandResult
from labyrinth_tui.probes.evidence import (
    EvidenceParseError,
    gather_evidence,
    iptables_save_argv,
    parse_bpftool_link,
    parse_bpftool_net,
    parse_bpftool_programs,
    parse_iptables_save,
    read_node,
)
from tests.fakes import DATA

BEFORE = (DATA / "iptables_save_nat_before.txt").read_text()
AFTER = (DATA / "iptables_save_nat_after.txt").read_text()
SVC = "wrk-2/node-wrk-2-ubuntu24:tcp-9999"


def test_rules_have_counters_targets_and_kube_proxy_comments() -> None:
    snap = parse_iptables_save(AFTER)
    dnat = next(r for r in snap.rules if r.chain == "KUBE-SEP-FXHI2MOU7V5XIHJD" and r.target == "DNAT")
    assert (dnat.table, dnat.position, dnat.packets, dnat.bytes) == ("nat", 2, 1, 60)
    assert dnat.comment == SVC
    assert "--to-destination 10.0.2.215:9999" in dnat.rule
    portal = next(
        r for r in snap.rules if r.chain == "KUBE-SERVICES" and r.target == "KUBE-SVC-IWPXKGE4TAJJE4GD"
    )
    assert portal.comment == f"{SVC} cluster IP"
    assert {c.name: c.policy for c in snap.chains}["PREROUTING"] == "ACCEPT"
    assert len(snap.rules) == 38
    assert not parse_iptables_save("*nat\n[3:4] -A POSTROUTING -j MASQUERADE\nCOMMIT\n").kube_rules()


def test_diff_shows_the_rules_the_syn_and_dns_went_through() -> None:
    before = NodeEvidenceOf(BEFORE)
    after = NodeEvidenceOf(AFTER)
    moved = diff_evidence(before, after)
    svc = moved.for_service("wrk-2", "node-wrk-2-ubuntu24", "tcp-9999")
    # the SYN, once, through the portal, the service chain and the endpoint's DNAT (60 bytes: the SYN)
    assert [(m.rule.chain, m.rule.target, m.packets, m.bytes) for m in svc] == [
        ("KUBE-SEP-FXHI2MOU7V5XIHJD", "DNAT", 1, 60),
        ("KUBE-SERVICES", "KUBE-SVC-IWPXKGE4TAJJE4GD", 1, 60),
        ("KUBE-SVC-IWPXKGE4TAJJE4GD", "KUBE-SEP-FXHI2MOU7V5XIHJD", 1, 60),
    ]
    assert svc[0].text == f"+1 pkt KUBE-SEP-FXHI2MOU7V5XIHJD → DNAT  /* {SVC} */"
    dns = moved.for_service("kube-system", "kube-dns", "dns")
    assert {m.packets for m in dns} == {2}  # the two conntrack entries of the search walk's A/AAAA pairs
    assert moved.for_service("wrk-2", "node-wrk-2-ubuntu24", "udp-9999") == ()
    assert not moved.problems


def test_counters_going_down_are_a_problem_not_a_move() -> None:
    moved = diff_evidence(NodeEvidenceOf(AFTER), NodeEvidenceOf(BEFORE))
    assert moved.moved == ()
    assert any("went down" in p for p in moved.problems)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("*nat\n[1:2] -A X -j Y\n", "has no COMMIT"),
        ("[1:2] -A X -j Y\n", "outside a *table"),
        ("*nat\n-A KUBE-SERVICES -j KUBE-NODEPORTS\nCOMMIT\n", "was -c given?"),
        ("*nat\n:PREROUTING ACCEPT\nCOMMIT\n", "not a chain header"),
        ('*nat\n[0:0] -A X -m comment --comment "open -j Y\nCOMMIT\n', "unbalanced quoting"),
        ("*bogus\nCOMMIT\n", "unknown table"),
    ],
)
def test_malformed_iptables_save_is_a_clear_error(text: str, why: str) -> None:
    with pytest.raises(EvidenceParseError, match=re.escape(why)):
        parse_iptables_save(text)


def test_empty_save_and_argv() -> None:
    assert parse_iptables_save("").rules == ()
    assert iptables_save_argv() == ["iptables-save", "-c", "-t", "nat"]
    with pytest.raises(ValueError, match="unknown iptables table"):
        iptables_save_argv("nat; rm -rf /")


def test_bpftool_empty_as_in_the_lab_and_with_cilium_programs() -> None:
    assert parse_bpftool_net('[{"xdp":[],"tc":[],"flow_dissector":[]}]') == ()
    assert parse_bpftool_link("[]") == ()
    net = parse_bpftool_net(
        '[{"xdp":[],"tc":[{"devname":"lxc91a2bea4a8f8","ifindex":9,"kind":"tcx/ingress",'
        '"name":"cil_from_container","prog_id":812},{"devname":"cilium_vxlan","ifindex":4,'
        '"kind":"clsact/egress","name":"cil_to_overlay","id":790}],"flow_dissector":[]}]'
    )
    assert [(a.interface, a.hook, a.direction, a.program, a.prog_id) for a in net] == [
        ("lxc91a2bea4a8f8", "tcx", "ingress", "cil_from_container", 812),
        ("cilium_vxlan", "tc", "egress", "cil_to_overlay", 790),
    ]
    link = parse_bpftool_link(
        '[{"id":3,"type":"tcx","prog_id":812,"ifindex":9,"attach_type":"tcx_ingress"},'
        '{"id":4,"type":"cgroup","prog_id":5}]',
        {9: "lxc91a2bea4a8f8"},
    )
    assert [(a.interface, a.hook, a.direction) for a in link] == [("lxc91a2bea4a8f8", "tcx", "ingress")]
    with pytest.raises(EvidenceParseError, match="bpftool net"):
        parse_bpftool_net("{not json")
    with pytest.raises(EvidenceParseError, match="expected a JSON list"):
        parse_bpftool_link('{"type":"tcx"}')


class FakeNode:
    """A CommandRunner that runs what it is sent with the real `sh`, the node's tools faked in a folder
    first on PATH: each answers its `outputs` entry (status, stdout), and a tool missing from `outputs`
    says what sh says of a command it cannot find (exit 127)."""

    def __init__(self, outputs: dict[str, tuple[int, str]], bin_dir: Path) -> None:
        self.outputs = outputs
        self.ran: list[tuple[str, ...]] = []  # the commands the node ran, each with its arguments
        self.round_trips = 0
        self.bin = bin_dir
        self.log = bin_dir / "ran.log"
        for tool in ("iptables-save", "bpftool", "ip"):
            status, out = outputs.get(tool, (127, ""))
            (bin_dir / f"{tool}.out").write_text(out)
            said = f'cat "{bin_dir}/{tool}.out"' + (f'; echo "{tool}: cannot do it" >&2' if status else "")
            said = f'echo "sh: 1: {tool}: not found" >&2' if status == 127 else said
            script = bin_dir / tool
            script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{self.log}"\n{said}\nexit {status}\n')
            script.chmod(0o755)

    @property
    def name(self) -> str:
        return "node-1"

    @property
    def address(self) -> str:
        return "10.168.0.4"

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = 30.0,
        input: str | None = None,
        check: bool = True,
    ) -> CommandResult:
        self.round_trips += 1
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ.get('PATH', '')}"}
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=env, cwd=self.bin
        )
        out, err = await proc.communicate((input or "").encode())
        if self.log.exists():
            self.ran = [tuple(line.split()) for line in self.log.read_text().splitlines()]
        return CommandResult(tuple(argv), proc.returncode or 0, out.decode(), err.decode())


async def test_gather_without_bpftool_still_has_the_counters(tmp_path: Path) -> None:
    node = FakeNode({"iptables-save": (0, AFTER)}, tmp_path)
    ev = await gather_evidence(node)
    assert ev.node == "node-1" and ev.iptables is not None and len(ev.iptables.rules) == 38
    assert ev.bpf == ()
    assert ev.problems == ("no bpftool on this node: BPF attachments not shown",)


async def test_gather_with_garbage_iptables_reports_why(tmp_path: Path) -> None:
    node = FakeNode({"iptables-save": (0, "hello\n"), "bpftool": (0, "[]")}, tmp_path)
    ev = await gather_evidence(node)
    assert ev.iptables is None
    assert len(ev.problems) == 1 and "outside a *table" in ev.problems[0]


def NodeEvidenceOf(text: str) -> NodeEvidence:
    return NodeEvidence("node-1", parse_iptables_save(text), ())


# `bpftool -j prog show` of two Cilium programs (run_cnt only with sysctl kernel.bpf_stats_enabled=1)
PROGS = (
    '[{"id":3355,"type":"sched_cls","name":"cil_from_contai","run_cnt":14,"map_ids":[1515]},'
    '{"id":3357,"type":"sched_cls","name":"cil_from_overlay","map_ids":[1515,1514]}]'
)


def test_bpftool_7_1_cannot_place_tcx_links_and_says_so_instead_of_guessing() -> None:
    # Debian 12's bpftool 7.1: `{"id":2325,"type":11,"prog_id":3357}`, no device, no direction
    found = parse_bpftool_programs("node-1", '[{"id":2325,"type":11,"prog_id":3357}]', PROGS)
    assert found.links == ()
    assert found.error == "bpftool cannot name the device of 1 tcx links (it can from 7.4 on): not shown"


def test_a_newer_bpftool_places_each_tcx_link_with_its_program_and_run_count() -> None:
    links = (
        '[{"id":2324,"type":"tcx","prog_id":3355,"ifindex":9,"devname":"lxc1ba60d50596c",'
        '"attach_type":"tcx_ingress"},{"id":2325,"type":"tcx","prog_id":3357,"ifindex":5,'
        '"devname":"cilium_vxlan","attach_type":"tcx_ingress"},{"id":7,"type":"cgroup","prog_id":5}]'
    )
    found = parse_bpftool_programs("node-1", links, PROGS)
    assert found.error == ""
    assert [(ln.article_line(), ln.prog_name, ln.seen) for ln in found.links] == [
        ("2324: tcx prog 3355 ifindex lxc1ba60d50596c(9) attach_type tcx_ingress", "cil_from_contai", 14),
        ("2325: tcx prog 3357 ifindex cilium_vxlan(5) attach_type tcx_ingress", "cil_from_overlay", 0),
    ]


async def test_gather_takes_the_programs_from_the_callers_reader_or_says_why_not(tmp_path: Path) -> None:
    from tests.fakes.article_journey import datapath

    node = FakeNode({"iptables-save": (0, AFTER), "bpftool": (0, "[]")}, tmp_path)

    async def lab_reader() -> NodeBpf:
        return datapath("node-1", "lxc1ba60d50596c", 1)

    ev = await gather_evidence(node, datapath=lab_reader)
    assert ev.datapath is not None and len(ev.datapath.links) == 8 and ev.problems == ()
    # the reader replaces bpftool's program list: the node is not asked for it (every lab's programs)
    assert ("bpftool", "-j", "prog", "show") not in node.ran and ("bpftool", "-j", "net") in node.ran

    async def gone() -> NodeBpf:
        raise OSError(2, "No such file or directory")

    ev = await gather_evidence(node, datapath=gone)
    assert ev.datapath is None
    assert ev.problems == ("BPF programs not read: [Errno 2] No such file or directory",)


async def test_one_round_trip_reads_the_node_with_each_tool_s_own_words_and_the_veths(tmp_path: Path) -> None:
    node = FakeNode(
        {"iptables-save": (4, ""), "bpftool": (0, "[]"), "ip": (0, "lxc1ba60d50596c  UP  fe80::1/64\n")},
        tmp_path,
    )
    read = await read_node(node, veths=["lxc1ba60d50596c", "lxc000000000000"])
    assert node.round_trips == 1
    assert read.evidence.problems == ("iptables-save failed (4): iptables-save: cannot do it",)
    assert read.veths == {"lxc1ba60d50596c": True, "lxc000000000000": False}
    assert ("ip", "-br", "link", "show", "dev", "lxc000000000000") in node.ran
    # no reader of its own: bpftool's program list is read in the same round trip
    assert ("bpftool", "-j", "prog", "show") in node.ran
