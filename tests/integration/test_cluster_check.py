"""`labyrinth cluster check` on the lab: every pair reaches every other over SSH, and a firewall rule
dropping the kubelet's port inside one node's netns is found and named."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.conftest import labyrinth


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return labyrinth("cluster", "check", *args, check=False)


def _verdicts(out: str) -> dict[tuple[str, str, int], str]:
    return {(p["from"], p["to"], p["port"]): p["verdict"] for p in json.loads(out)["probes"]}


def test_the_lab_passes_with_6443_and_10250_closed_not_filtered(lab_prefix: str) -> None:
    result = _check("--prefix", lab_prefix)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "20/20 probes passed: every node reaches every other"
    # nothing listens on 6443/10250 in the lab: the hosts refuse, the way is open
    six = lines.index("6443/tcp (API server) — to the control plane only")
    assert lines[six + 3].split() == ["node-1", "✓", "closed", "·", "·"]


def test_a_dropped_kubelet_port_is_filtered_with_its_reason(
    lab_prefix: str, lab_state: dict[str, Any], tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(labyrinth("lab", "inventory", "--prefix", lab_prefix).stdout)
    netns = next(n["netns"] for n in lab_state["nodes"] if n["name"] == "node-1")
    rule = ["-p", "tcp", "--dport", "10250", "-j", "DROP"]
    subprocess.run(["ip", "netns", "exec", netns, "iptables", "-I", "INPUT", *rule], check=True)
    try:
        result = _check("--ssh-inventory", str(inventory), "--timeout", "1", "--json")
    finally:
        subprocess.run(["ip", "netns", "exec", netns, "iptables", "-D", "INPUT", *rule], check=True)
    assert result.returncode == 1
    verdicts = _verdicts(result.stdout)
    assert verdicts[("node-0", "node-1", 10250)] == "filtered"
    assert verdicts[("node-2", "node-1", 10250)] == "filtered"
    assert verdicts[("node-1", "node-0", 10250)] == "closed"  # only node-1's port is dropped
    assert {v for k, v in verdicts.items() if k[2] == 22} == {"open"}
