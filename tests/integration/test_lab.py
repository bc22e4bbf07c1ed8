"""The lab, for real (root): the article's journey works, DNS walks the search list, counters move, sshd."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from tests.fakes.waiting import in_netns, listening, wait_until
from tests.integration.conftest import LABYRINTH, labyrinth, state_dir

WRK1 = "node-wrk-1-ubuntu24"
WRK2 = "node-wrk-2-ubuntu24"


def pod(state: dict[str, Any], name_prefix: str) -> dict[str, Any]:
    return next(p for p in state["pods"] if p["name"].startswith(name_prefix))


def test_status_json_has_nodes_pods_services(lab_state: dict[str, Any]) -> None:
    assert lab_state["up"] is True
    nodes = {n["name"]: n for n in lab_state["nodes"]}
    assert {k: v["address"] for k, v in nodes.items()} == {
        "node-0": "10.168.0.2",
        "node-1": "10.168.0.4",
        "node-2": "10.168.0.5",
    }
    for node in nodes.values():
        assert node["ssh"]["port"] == 22 and node["ssh"]["host_key"].startswith("ssh-ed25519 ")
    wrk1, wrk2, dns = pod(lab_state, WRK1), pod(lab_state, WRK2), pod(lab_state, "coredns")
    assert (wrk1["namespace"], wrk1["node"], wrk1["ip"], wrk1["gateway"]) == (
        "wrk-1",
        "node-1",
        "10.0.1.15",
        "10.0.1.49",
    )
    assert (wrk2["namespace"], wrk2["node"], wrk2["ip"], wrk2["gateway"]) == (
        "wrk-2",
        "node-2",
        "10.0.2.215",
        "10.0.2.244",
    )
    assert (dns["namespace"], dns["node"], dns["ip"]) == ("kube-system", "node-2", "10.0.2.17")
    for p in (wrk1, wrk2, dns):
        assert re.fullmatch(r"lxc[0-9a-f]{12}", p["host_veth"])
    services = {f"{s['namespace']}/{s['name']}": s for s in lab_state["services"]}
    assert services[f"wrk-2/{WRK2}"]["cluster_ip"] == "10.105.134.33"
    assert [(p["name"], p["protocol"], p["port"]) for p in services[f"wrk-2/{WRK2}"]["ports"]] == [
        ("tcp-9999", "TCP", 9999),
        ("udp-9999", "UDP", 9999),
    ]
    assert services["kube-system/kube-dns"]["cluster_ip"] == "10.96.0.10"


def test_the_pod_side_is_wired_like_the_article(lab_state: dict[str, Any]) -> None:
    wrk1 = pod(lab_state, WRK1)
    routes = in_netns(wrk1["netns"], "ip", "route").stdout
    assert "default via 10.0.1.49 dev eth0 mtu 1410" in routes
    assert "10.0.1.49 dev eth0 scope link" in routes
    addr = in_netns(wrk1["netns"], "ip", "-br", "addr", "show", "eth0").stdout
    assert "10.0.1.15/32" in addr
    # no IPv6 address on eth0 (addrgenmode none): the pod sends no DAD, router solicitation or MLD
    # of its own, so a capture on its veth holds only the traffic it was sent
    assert in_netns(wrk1["netns"], "ip", "-6", "addr", "show", "dev", "eth0").stdout.strip() == ""
    assert "addrgenmode none" in in_netns(wrk1["netns"], "ip", "-d", "link", "show", "eth0").stdout
    node1 = next(n for n in lab_state["nodes"] if n["name"] == "node-1")
    links = in_netns(node1["netns"], "ip", "-br", "link").stdout
    for name in ("ens4", "cilium_host", "cilium_net", "cilium_vxlan", wrk1["host_veth"]):
        assert name in links
    vxlan = in_netns(node1["netns"], "ip", "-d", "link", "show", "cilium_vxlan").stdout
    assert "dstport 8472" in vxlan


def _iptables_counter(netns: str, chain_fragment: str) -> int:
    saved = in_netns(netns, "iptables-save", "-c", "-t", "nat").stdout
    line = next(ln for ln in saved.splitlines() if chain_fragment in ln and ln.startswith("["))
    return int(line[1:].split(":")[0])


def test_tcp_by_service_name_dns_walk_and_counters(lab_prefix: str, lab_state: dict[str, Any]) -> None:
    wrk2 = pod(lab_state, WRK2)
    node1 = next(n for n in lab_state["nodes"] if n["name"] == "node-1")
    svc_rule = "-j KUBE-SVC-IWPXKGE4TAJJE4GD"  # the article's chain for wrk-2/node-wrk-2-ubuntu24:tcp-9999
    before = _iptables_counter(node1["netns"], svc_rule)
    server = subprocess.Popen(
        [*LABYRINTH, "lab", "exec", "--prefix", lab_prefix, WRK2, "--", "ncat", "-l", "0.0.0.0", "9999"],
        stdin=subprocess.PIPE,  # stdin kept open: ncat -l would send FIN at EOF (docs/lab-facts.md)
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: listening(wrk2["netns"], 9999), what="ncat -l in the wrk-2 pod")
        client = labyrinth(
            "lab",
            "exec",
            "--prefix",
            lab_prefix,
            WRK1,
            "--",
            "ncat",
            f"{WRK2}.wrk-2",
            "9999",
            input="asdfasdfasdfasd\n",
        )
        assert client.returncode == 0
        assert server.stdout is not None
        assert server.stdout.readline() == "asdfasdfasdfasd\n"
    finally:
        server.kill()
        server.wait()
    assert _iptables_counter(node1["netns"], svc_rule) == before + 1

    log = (state_dir(lab_prefix) / "dns.log").read_text()
    walk = [ln.split("dnsmasq")[-1] for ln in log.splitlines() if f"{WRK2}.wrk-2" in ln]
    full = f"{WRK2}.wrk-2.wrk-1.svc.cluster.local"
    short = f"{WRK2}.wrk-2.svc.cluster.local"
    first_full = next(i for i, ln in enumerate(walk) if f"query[A] {full} from 10.0.1.15" in ln)
    first_short = next(i for i, ln in enumerate(walk) if f"query[A] {short} from 10.0.1.15" in ln)
    assert first_full < first_short, "the resolver walks the search list: wrk-1's namespace first"
    assert any(f"{full} is NXDOMAIN" in ln for ln in walk)
    assert any(f"{short} is 10.105.134.33" in ln for ln in walk)


def test_udp_by_service_name(lab_prefix: str, lab_state: dict[str, Any]) -> None:
    wrk2 = pod(lab_state, WRK2)
    server = subprocess.Popen(
        [
            *LABYRINTH,
            "lab",
            "exec",
            "--prefix",
            lab_prefix,
            WRK2,
            "--",
            "ncat",
            "-u",
            "-l",
            "0.0.0.0",
            "9999",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: listening(wrk2["netns"], 9999, udp=True), what="ncat -u -l in the wrk-2 pod")
        labyrinth(
            "lab",
            "exec",
            "--prefix",
            lab_prefix,
            WRK1,
            "--",
            "ncat",
            "-u",
            "--send-only",
            f"{WRK2}.wrk-2",
            "9999",
            input="over-udp\n",
        )
        assert server.stdout is not None
        assert server.stdout.readline() == "over-udp\n"
    finally:
        server.kill()
        server.wait()


def _ssh(
    lab_prefix: str, state: dict[str, Any], node: dict[str, Any], key: Path, tmp: Path
) -> subprocess.CompletedProcess[str]:
    known = tmp / "known_hosts"
    known.write_text(f"{node['address']} {node['ssh']['host_key']}\n")
    node0 = next(n for n in state["nodes"] if n["name"] == "node-0")
    return in_netns(
        node0["netns"],
        "ssh",
        "-i",
        str(key),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known}",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=5",
        f"root@{node['address']}",
        "hostname",
        check=False,
    )


def test_each_sshd_accepts_the_lab_key_and_refuses_others(
    lab_prefix: str, lab_state: dict[str, Any], tmp_path: Path
) -> None:
    lab_key = Path(lab_state["nodes"][0]["ssh"]["client_key"])
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    for node in lab_state["nodes"]:
        ok = _ssh(lab_prefix, lab_state, node, lab_key, tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == node["name"]  # each node has its own hostname
        refused = _ssh(lab_prefix, lab_state, node, other, tmp_path)
        assert refused.returncode == 255
        assert "Permission denied" in refused.stderr


def test_up_again_changes_nothing(lab_prefix: str, lab_state: dict[str, Any]) -> None:
    again = labyrinth("lab", "up", "--prefix", lab_prefix, "--datapath", "iptables", "--json")
    assert "already up" in again.stderr
    import json

    state = json.loads(again.stdout)
    assert [n["sshd_pid"] for n in state["nodes"]] == [n["sshd_pid"] for n in lab_state["nodes"]]


def test_exec_into_an_unknown_pod_is_a_clear_error(lab_prefix: str) -> None:
    out = labyrinth("lab", "exec", "--prefix", lab_prefix, "no-such-pod", "--", "true", check=False)
    assert out.returncode == 1
    assert "no pod 'no-such-pod'" in out.stderr
    assert "Traceback" not in out.stderr
