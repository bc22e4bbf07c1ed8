"""`labyrinth topology` against the lab's real sshd: the discovered tree matches `lab status` pod for pod."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from tests.conftest import needs_root
from tests.fakes.waiting import wait_until
from tests.integration.conftest import labyrinth, unique_prefix


def test_tree_matches_lab_status_pod_for_pod(lab_prefix: str, lab_state: dict[str, Any]) -> None:
    out = labyrinth("topology", "--prefix", lab_prefix, "--json")
    tree = json.loads(out.stdout)
    found = {
        (p["namespace"], p["name"]): (n["name"], p["host_veth"], p["netns"], p["ip"], p["gateway"])
        for n in tree["nodes"]
        for p in n["pods"]
    }
    expected = {
        (p["namespace"], p["name"]): (p["node"], p["host_veth"], p["netns"], p["ip"], p["gateway"])
        for p in lab_state["pods"]
    }
    assert found == expected
    for node in tree["nodes"]:
        assert node["reachable"] is True
        kinds = {i["name"]: i["kind"] for i in node["interfaces"]}
        assert kinds["ens4"] == "veth" and kinds["cilium_vxlan"] == "vxlan"
        vxlan = next(i for i in node["interfaces"] if i["name"] == "cilium_vxlan")
        assert vxlan["vxlan"]["vni"] == 2 and vxlan["vxlan"]["port"] == 8472
    dns = next(p for n in tree["nodes"] for p in n["pods"] if p["name"].startswith("coredns"))
    assert any("dnsmasq" in proc for proc in dns["processes"])

    text = labyrinth("topology", "--prefix", lab_prefix).stdout
    assert "pod wrk-1/node-wrk-1-ubuntu24-684f7d8fd6-2zncq 10.0.1.15" in text
    assert "cilium_vxlan (vxlan, mtu 1410) vni 2 :8472" in text


@needs_root
def test_an_unreachable_node_is_shown_with_its_reason_and_the_others_still_come() -> None:
    prefix = unique_prefix("u")
    try:
        state = json.loads(labyrinth("lab", "up", "--prefix", prefix, "--json").stdout)
        node0 = next(n for n in state["nodes"] if n["name"] == "node-0")
        os.kill(node0["sshd_pid"], signal.SIGTERM)
        wait_until(
            lambda: not os.path.exists(f"/proc/{node0['sshd_pid']}/cmdline"), what="sshd of node-0 gone"
        )
        out = labyrinth("topology", "--prefix", prefix, "--json", check=False)
        assert out.returncode == 1
        nodes = {n["name"]: n for n in json.loads(out.stdout)["nodes"]}
        assert nodes["node-0"]["reachable"] is False
        assert "10.168.0.2:22" in nodes["node-0"]["error"]
        assert nodes["node-1"]["reachable"] and nodes["node-2"]["reachable"]
        assert len(nodes["node-2"]["pods"]) == 2
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)
