"""A real lab on the eBPF datapath (the default): the article's captures with kube-proxy's counters at 0,
each node's tcx links read from the kernel, classic tc as the fallback, and `lab down` leaving nothing."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labyrinth_tui.lab.bpf.datapath import kernel_has_tcx
from tests.conftest import IS_ROOT, needs_root
from tests.integration.conftest import LABYRINTH, article_exchange, labyrinth, state_dir, unique_prefix

CLUSTER_IP = "10.105.134.33:9999"
SERVER = "10.0.2.215:9999"
SVC_RULE = "-j KUBE-SVC-IWPXKGE4TAJJE4GD"  # the article's chain for wrk-2/node-wrk-2-ubuntu24:tcp-9999
NOTRACK = "cilium: NOTRACK for pod traffic"


@pytest.fixture(scope="module")
def ebpf_lab() -> Iterator[str]:
    if not IS_ROOT:
        pytest.skip("NEEDS ROOT: the lab builds network namespaces. CI runs as root; run `sudo make test`.")
    prefix = unique_prefix("e")
    try:
        labyrinth("lab", "up", "--prefix", prefix)  # no --datapath: ebpf is the default
        yield prefix
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


def status(prefix: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(labyrinth("lab", "status", "--prefix", prefix, "--json").stdout)
    return state


def bpf(prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(labyrinth("lab", "bpf", "--prefix", prefix, "--json").stdout)
    return found


def iptables_save(prefix: str, node: str, table: str) -> str:
    argv = ["ip", "netns", "exec", f"{prefix}.{node}", "iptables-save", "-c", "-t", table]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def svc_counter(prefix: str) -> int:
    saved = iptables_save(prefix, "node-1", "nat")
    line = next(ln for ln in saved.splitlines() if SVC_RULE in ln and "-A KUBE-SERVICES" in ln)
    return int(line[1:].split(":", 1)[0])


def notrack_packets(prefix: str, node: str) -> int | None:
    """Packets Cilium's NOTRACK rules took out of conntrack on a node, or None if it has none."""
    saved = iptables_save(prefix, node, "raw")
    counts = [int(ln[1:].split(":", 1)[0]) for ln in saved.splitlines() if NOTRACK in ln]
    return sum(counts) if counts else None


def bpftool(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True).stdout
    listing: list[dict[str, Any]] = json.loads(out or "[]")
    return listing


def test_status_says_the_datapath_and_the_attachment(ebpf_lab: str) -> None:
    state = status(ebpf_lab)
    assert state["datapath"] == "ebpf"
    assert state["bpf_attach"] == ("tcx" if kernel_has_tcx() else "tc")
    assert state["datapath_note"] == ""


def test_every_cilium_device_has_its_program_read_from_the_kernel(ebpf_lab: str) -> None:
    state, found = status(ebpf_lab), bpf(ebpf_lab)
    kind = state["bpf_attach"]
    ingress, egress = (
        (f"{kind}_ingress", f"{kind}_egress") if kind == "tcx" else ("clsact/ingress", "clsact/egress")
    )
    for node in found["nodes"]:
        assert node["error"] == ""
        links = {(ln["ifname"], ln["prog_name"], ln["attach_type"]) for ln in node["links"]}
        expected = {
            ("cilium_vxlan", "cil_from_overlay", ingress),
            ("cilium_vxlan", "cil_to_overlay", egress),
            ("cilium_host", "cil_to_host", ingress),
            ("cilium_host", "cil_from_host", egress),
            ("cilium_net", "cil_to_host", ingress),
            ("ens4", "cil_from_netdev", ingress),
            ("lxc_health", "cil_from_container", ingress),
        }
        expected |= {
            (p["host_veth"], "cil_from_container", ingress)
            for p in state["pods"]
            if p["node"] == node["node"]
        }
        assert links == expected
        frontends = {s["address"] + f":{s['port']}/{s['proto']}": s["backends"] for s in node["services"]}
        assert [b["address"] for b in frontends["10.105.134.33:9999/TCP"]] == ["10.0.2.215"]
        assert [b["address"] for b in frontends["10.96.0.10:53/UDP"]] == ["10.0.2.17"]
        assert [b["address"] for b in frontends["10.96.0.10:53/TCP"]] == ["10.0.2.17"]


@pytest.mark.skipif(not kernel_has_tcx(), reason="tcx links need kernel ≥ 6.6; the tc test covers older ones")
def test_the_kernels_bpftool_lists_the_same_links_and_programs(ebpf_lab: str) -> None:
    ours = {(ln["link_id"], ln["prog_id"]) for n in bpf(ebpf_lab)["nodes"] for ln in n["links"]}
    # Debian 12's bpftool 7.1 shows a tcx link as `type 11 prog N` only: its ids are what can be compared
    theirs = {(ln["id"], ln["prog_id"]) for ln in bpftool("link", "show")}
    assert ours <= theirs
    names = {p["id"]: p.get("name", "") for p in bpftool("prog", "show")}
    assert {names[prog][:15] for _, prog in ours} == {
        n[:15]
        for n in (
            "cil_from_overlay",
            "cil_to_overlay",
            "cil_to_host",
            "cil_from_host",
            "cil_from_netdev",
            "cil_from_container",
        )
    }


def test_the_article_journey_kube_proxy_counters_stay_at_0(ebpf_lab: str) -> None:
    before = svc_counter(ebpf_lab)
    report = json.loads(labyrinth("journey", "--json", "--prefix", ebpf_lab).stdout)
    client = report["client"]
    syn = report["handshake"]["syn"]["hops"]
    # the client's lxc shows the ClusterIP (the tap sees the packet before tc ingress), then the pod IP
    assert [h["dst"] for h in syn] == [CLUSTER_IP] + [SERVER] * 5
    assert syn[1]["changes"] == [f"DNAT {CLUSTER_IP} → {SERVER}"]
    ens4 = [h for h in syn if h["interface"] == "ens4"]
    assert all(h["outer"].startswith("10.168.0.4:") and h["outer"].endswith("10.168.0.5:8472") for h in ens4)
    synack = report["handshake"]["syn_ack"]["hops"]
    assert (synack[-1]["interface"], synack[-1]["src"]) == (client["host_veth"], CLUSTER_IP)
    assert synack[-2]["interface"] == "cilium_vxlan" and synack[-2]["src"] == SERVER
    assert report["dns"]["answer"] == "10.105.134.33"
    assert report["received"] == "asdfasdfasdfasd\n"
    assert svc_counter(ebpf_lab) == before == 0
    node1 = next(n for n in bpf(ebpf_lab)["nodes"] if n["node"] == "node-1")
    lxc = next(ln for ln in node1["links"] if ln["ifname"] == client["host_veth"])
    vxlan_in = next(
        ln for ln in node1["links"] if ln["ifname"] == "cilium_vxlan" and ln["direction"] == "ingress"
    )
    assert lxc["translated"] >= 2  # at least the DNS query and the SYN
    assert vxlan_in["translated"] >= 2  # their replies, given their ClusterIP back


def test_the_pods_traffic_skips_netfilter_conntrack_on_both_nodes_by_ciliums_rules(ebpf_lab: str) -> None:
    before = {node: notrack_packets(ebpf_lab, node) or 0 for node in ("node-1", "node-2")}
    article_exchange(ebpf_lab)
    after = {node: notrack_packets(ebpf_lab, node) or 0 for node in before}
    # the client's node and the server's: the BPF conntrack map alone tracks the service flow
    assert all(after[node] > before[node] for node in before), (before, after)
    assert svc_counter(ebpf_lab) == 0


def test_every_endpoint_runs_its_own_program_as_in_the_article(ebpf_lab: str) -> None:
    for node in bpf(ebpf_lab)["nodes"]:
        lxc = [ln for ln in node["links"] if ln["ifname"].startswith("lxc")]
        # node-0 has lxc_health only; node-1 and node-2 have their pods' lxc… beside it
        assert len(lxc) >= (1 if node["node"] == "node-0" else 2), lxc
        assert all(ln["prog_name"] == "cil_from_container" for ln in lxc)
        assert len({ln["prog_id"] for ln in lxc}) == len(lxc), lxc  # one program id per lxc


def test_the_tour_passes_with_kube_proxy_bypassed_and_the_journey_names_the_program(ebpf_lab: str) -> None:
    out = labyrinth("tour", "--prefix", ebpf_lab, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.rstrip().endswith("7/7 steps passed")
    assert "✓ kube-proxy's counters stay at 0; tcx programs on every Cilium device" in out.stdout
    assert "kube-proxy's iptables counters on node-1 moved" not in out.stdout
    text = labyrinth("journey", "--prefix", ebpf_lab).stdout
    syn = text[text.index("SYN:") : text.index("SYN-ACK:")]
    client = status(ebpf_lab)["pods"][0]["host_veth"]  # wrk-1's pod: the spec lists it first
    assert f"eBPF cil_from_container on node-1/{client} translated {CLUSTER_IP} → {SERVER} (+" in syn
    assert (
        "kube-proxy KUBE-SERVICES → KUBE-SVC-IWPXKGE4TAJJE4GD → KUBE-SEP-FXHI2MOU7V5XIHJD (DNAT): "
        "0 packets — bypassed"
    ) in syn
    assert "eBPF tcx/ingress cil_from_overlay #" in syn  # the programs on cilium_vxlan, counted


def traces(prefix: str) -> dict[str, list[str]]:
    """What a lab could leave, looked up independently: netns, the bpffs mount, its state folder."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    found = {
        "netns": [ln.split()[0] for ln in netns.splitlines() if ln.startswith(f"{prefix}.")],
        "mounts": [m.split()[4] for m in mounts if m.split()[4].startswith(str(state_dir(prefix)))],
        "files": [str(state_dir(prefix))] if state_dir(prefix).exists() else [],
    }
    return {k: v for k, v in found.items() if v}


@needs_root
def test_down_leaves_no_program_link_map_or_mount_and_spares_another_lab() -> None:
    mine, other = unique_prefix("d"), unique_prefix("o")
    try:
        labyrinth("lab", "up", "--prefix", mine)
        labyrinth("lab", "up", "--prefix", other)
        links = [ln for n in bpf(mine)["nodes"] for ln in n["links"]]
        prog_ids = {ln["prog_id"] for ln in links}
        map_ids = {m for p in bpftool("prog", "show") if p["id"] in prog_ids for m in p.get("map_ids", [])}
        # per node the five overlay/host programs, then one cil_from_container per lxc: 3 lxc_health, 3 pods
        assert len(prog_ids) == 3 * 5 + 3 + 3 and map_ids
        other_before = {(ln["link_id"], ln["prog_id"]) for n in bpf(other)["nodes"] for ln in n["links"]}
        labyrinth("lab", "down", "--prefix", mine)
        assert traces(mine) == {}
        assert not prog_ids & {p["id"] for p in bpftool("prog", "show")}
        assert not map_ids & {m["id"] for m in bpftool("map", "show")}
        if kernel_has_tcx():
            assert not {ln["link_id"] for ln in links} & {ln["id"] for ln in bpftool("link", "show")}
        assert {
            (ln["link_id"], ln["prog_id"]) for n in bpf(other)["nodes"] for ln in n["links"]
        } == other_before
    finally:
        labyrinth("lab", "down", "--prefix", mine, check=False)
        labyrinth("lab", "down", "--prefix", other, check=False)


@needs_root
@pytest.mark.parametrize("step", ["bpf-mounted", "bpf-loaded", "bpf-attached", "ebpf"])
def test_kill_9_while_the_datapath_comes_up_then_down_leaves_nothing(step: str) -> None:
    prefix = unique_prefix("k")
    try:
        crashed = subprocess.run(
            [*LABYRINTH, "lab", "up", "--prefix", prefix],
            env={**os.environ, "LABYRINTH_CRASH_AT": step},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crashed.returncode == -9, crashed.stderr
        assert traces(prefix).get("mounts"), "the crash should have left the bpffs mounted"
        labyrinth("lab", "down", "--prefix", prefix)
        assert traces(prefix) == {}
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@needs_root
def test_classic_tc_filters_carry_the_journey_when_forced() -> None:
    prefix = unique_prefix("c")
    try:
        labyrinth("lab", "up", "--prefix", prefix, "--bpf-attach", "tc")
        assert status(prefix)["bpf_attach"] == "tc"
        # bpftool 7.1 lists clsact filters (not tcx) in the node's netns
        net = json.loads(
            subprocess.run(
                ["ip", "netns", "exec", f"{prefix}.node-1", "bpftool", "-j", "net", "show"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        tc = {(t["devname"], t["kind"], t["name"].split(":")[0]) for t in net[0]["tc"]}
        assert ("cilium_vxlan", "clsact/ingress", "cil_from_overla") in tc
        assert ("ens4", "clsact/ingress", "cil_from_netdev") in tc
        report = json.loads(labyrinth("journey", "--json", "--prefix", prefix).stdout)
        assert [h["dst"] for h in report["handshake"]["syn"]["hops"]] == [CLUSTER_IP] + [SERVER] * 5
        assert report["received"] == "asdfasdfasdfasd\n"
        assert svc_counter(prefix) == 0
        labyrinth("lab", "down", "--prefix", prefix)
        assert traces(prefix) == {}
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@needs_root
def test_without_clang_or_cached_objects_the_lab_falls_back_to_iptables_and_says_so(tmp_path: Path) -> None:
    prefix = unique_prefix("f")
    # /bin is /usr/bin on Debian: a PATH of /usr/sbin and the lab's own tools, clang left out
    env = {**os.environ, "PATH": f"/usr/sbin:{tmp_path / 'bin'}"}
    (tmp_path / "bin").mkdir()
    for tool in (
        "ip",
        "bridge",
        "iptables-restore",
        "iptables-save",
        "dnsmasq",
        "ncat",
        "sshd",
        "ssh-keygen",
    ):
        found = subprocess.run(["which", tool], capture_output=True, text=True, check=False).stdout.strip()
        if found.startswith("/usr/bin/"):
            (tmp_path / "bin" / tool).symlink_to(found)
    env["LABYRINTH_BPF_CACHE"] = str(tmp_path / "empty-cache")
    try:
        up = subprocess.run(
            [*LABYRINTH, "lab", "up", "--prefix", prefix], env=env, capture_output=True, text=True, timeout=60
        )
        assert up.returncode == 0, up.stderr
        assert "note: eBPF cannot be loaded here: clang is not installed" in up.stderr
        assert "Traceback" not in up.stderr
        state = status(prefix)
        assert (state["datapath"], state["bpf_attach"]) == ("iptables", "")
        assert "make setup" in state["datapath_note"]
        # kube-proxy carries the service and conntrack must see its replies: no Cilium NOTRACK rules
        assert notrack_packets(prefix, "node-1") is None
        article_exchange(prefix)
        assert svc_counter(prefix) > 0
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@needs_root
def test_a_lab_of_300_pods_comes_down_although_its_links_go_one_grace_period_at_a_time() -> None:
    # 321 tcx links: the kernel frees them over ~4 s (one RCU grace period each), longer than down's wait
    # without progress; down must keep waiting while they go and then leave nothing
    prefix = unique_prefix("s")
    try:
        labyrinth("lab", "up", "--prefix", prefix, "--pods-per-node", "100")
        links = [ln for n in bpf(prefix)["nodes"] for ln in n["links"]]
        assert len(links) == 3 * 7 + 3 + 300  # each node's seven devices, the article's 3 pods and 300 more
        down = labyrinth("lab", "down", "--prefix", prefix, check=False)
        assert down.returncode == 0, down.stderr
        assert traces(prefix) == {}
        if kernel_has_tcx():
            assert not {ln["link_id"] for ln in links} & {ln["id"] for ln in bpftool("link", "show")}
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@needs_root
def test_a_whole_lab_up_the_verifier_rejects_fails_with_its_words_and_leaves_nothing(tmp_path: Path) -> None:
    # a cache folder (LABYRINTH_BPF_CACHE) whose bpf_lxc.o holds a cil_from_container that reads the
    # packet without a bounds check: `lab up` takes cached objects as they are, so the kernel refuses it
    from labyrinth_tui.lab.bpf.compile import clang_argv, compile_into, source_hash

    folder = tmp_path / "cache" / source_hash()
    compile_into(folder)
    bad = tmp_path / "bad.c"
    bad.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        'SEC("tc") int cil_from_container(struct __sk_buff *skb) {\n'
        "  return *(int *)(long)skb->data;\n}\n"
        'char _license[] SEC("license") = "GPL";\n'
    )
    subprocess.run(clang_argv(bad, folder / "bpf_lxc.o"), check=True)
    prefix = unique_prefix("v")
    try:
        failed = labyrinth(
            "lab",
            "up",
            "--prefix",
            prefix,
            check=False,
            env={**os.environ, "LABYRINTH_BPF_CACHE": str(folder.parent)},
        )
        said = failed.stdout + failed.stderr
        assert failed.returncode != 0
        assert "the eBPF datapath failed: load bpf_lxc.o: Permission denied" in said
        assert "invalid access to packet" in said  # the verifier's own line
        assert "Traceback" not in said
        assert traces(prefix) == {}
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)
