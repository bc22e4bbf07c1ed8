"""The node ↔ node check's probes: which pairs and ports, and what a probe's output means."""

from __future__ import annotations

import subprocess

from labyrinth_tui.nodes.commands import port_probe
from labyrinth_tui.probes.node_check import (
    CLUSTER_PORTS,
    NodeAddress,
    PairResult,
    Verdict,
    matrix_lines,
    probes_for,
    read_probe,
)

SSH, API, VXLAN, KUBELET = CLUSTER_PORTS
NODES = [
    NodeAddress("node-0", "10.168.0.2", control_plane=True),
    NodeAddress("node-1", "10.168.0.4"),
    NodeAddress("node-2", "10.168.0.5"),
]


def test_every_ordered_pair_and_6443_only_to_the_control_plane() -> None:
    probes = [(s.name, d.name, p.label) for s, d, p in probes_for(NODES)]
    assert len(probes) == 6 * 3 + 2  # 22, 8472, 10250 on 6 ordered pairs; 6443 from the 2 workers
    assert [(s, d) for s, d, p in probes if p == "6443/tcp"] == [("node-1", "node-0"), ("node-2", "node-0")]
    assert ("node-0", "node-0", "22/tcp") not in probes


def test_what_a_probe_said_is_a_verdict_with_its_reason() -> None:
    assert read_probe("bash 0\n", SSH) == (Verdict.OPEN, "answered")
    refused = (
        "bash 1\nbash: connect: Connection refused\nbash: /dev/tcp/10.168.0.2/6443: Connection refused\n"
    )
    assert read_probe(refused, API) == (Verdict.CLOSED, "refused: the host answered, nothing listens")
    assert read_probe("bash 124\n", KUBELET, 2) == (
        Verdict.FILTERED,
        "no answer within 2 s (a firewall dropping it?)",
    )
    assert read_probe("bash 142\n", VXLAN, 2) == (
        Verdict.OPEN_FILTERED,
        "no ICMP port unreachable within 2 s",
    )
    icmp = "bash 1\nbash: line 1: read: read error: 0: Connection refused\n"
    assert read_probe(icmp, VXLAN)[0] is Verdict.CLOSED
    no_route = "bash 1\nbash: connect: No route to host\n"
    assert read_probe(no_route, SSH)[0] is Verdict.UNREACHABLE
    assert read_probe("nc 1\nnc: connect to 10.168.0.4 port 10250 (tcp) timed out\n", KUBELET)[0] is (
        Verdict.FILTERED
    )
    assert read_probe("none 127\nneither bash with timeout nor nc is installed\n", SSH)[0] is Verdict.ERROR
    assert Verdict.CLOSED.passes and Verdict.OPEN_FILTERED.passes and not Verdict.FILTERED.passes


def test_the_probe_refused_on_loopback_is_read_as_closed() -> None:
    """The real script on this machine, to a loopback port nothing listens on (port 1)."""
    for port in (KUBELET, VXLAN):
        argv = port_probe(port.proto, "127.0.0.1", 1, 2)
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
        assert read_probe(out, port)[0] is Verdict.CLOSED, out


def test_the_matrix_says_each_failure_with_its_reason() -> None:
    results = [PairResult(s.name, d.name, p, Verdict.OPEN, "answered") for s, d, p in probes_for(NODES)]
    results[0] = PairResult("node-0", "node-1", SSH, Verdict.FILTERED, "no answer within 2 s")
    lines = matrix_lines(NODES, results)
    assert lines[:3] == [
        "22/tcp (SSH)",
        "  from \\ to        node-0           node-1           node-2",
        "  node-0           ·                ✗ filtered       ✓ open",
    ]
    assert "✗ node-0 → node-1 22/tcp (SSH): filtered: no answer within 2 s" in lines
    assert lines[-1] == "19/20 probes passed"
