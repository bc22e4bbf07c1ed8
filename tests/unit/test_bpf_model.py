"""The datapath as a user reads it: bpftool's link form, `cilium bpf lb list`, the service table, doctor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from labyrinth_tui.lab.bpf.maps import frontends
from labyrinth_tui.lab.spec import article_spec
from labyrinth_tui.model.bpf import BpfLink, LbBackend, LbService, NodeBpf, lb_list, node_lines
from tests.unit.test_cli import _path_without

VXLAN_IN = BpfLink("tcx", 2, 572, "cil_from_overlay", 5, "cilium_vxlan", "tcx_ingress", 14, 14)
SERVICE = LbService("10.105.134.33", 9999, "TCP", 5, (LbBackend(1, 3, "10.0.2.215", 9999, "TCP"),))


def test_a_tcx_link_reads_as_in_the_article() -> None:
    assert VXLAN_IN.article_line() == "2: tcx prog 572 ifindex cilium_vxlan(5) attach_type tcx_ingress"
    tc = BpfLink("tc", None, 371, "cil_from_overlay", 5, "cilium_vxlan", "clsact/ingress")
    assert tc.article_line() == "cilium_vxlan(5) clsact/ingress cil_from_overlay prog_id 371"
    assert (VXLAN_IN.direction, tc.direction) == ("ingress", "ingress")


def test_the_service_map_reads_like_cilium_bpf_lb_list() -> None:
    assert lb_list((SERVICE,)) == [
        "SERVICE ADDRESS             BACKEND ADDRESS (REVNAT_ID) (SLOT)",
        "10.105.134.33:9999/TCP (0)  0.0.0.0:0 (5) (0) [ClusterIP]",
        "10.105.134.33:9999/TCP (1)  10.0.2.215:9999/TCP (5) (1)",
    ]


def test_a_node_lists_programs_with_counters_and_round_trips_through_json() -> None:
    node = NodeBpf("node-1", "tcx", (VXLAN_IN,), (SERVICE,))
    lines = node_lines(node)
    assert lines[:3] == [
        "node-1: 1 tcx attachments",
        "  2: tcx prog 572 ifindex cilium_vxlan(5) attach_type tcx_ingress",
        "      cil_from_overlay: 14 packets seen, 14 translated",
    ]
    data = json.loads(json.dumps(node.to_json()))
    assert data["links"][0]["direction"] == "ingress"
    assert NodeBpf.from_json(data) == node


def test_the_service_table_holds_the_articles_service_and_kube_dns_on_both_protocols() -> None:
    table = {
        (f.cluster_ip, f.port, f.proto): [b.address for b in f.backends] for f in frontends(article_spec())
    }
    assert table[("10.105.134.33", 9999, "TCP")] == ["10.0.2.215"]
    assert table[("10.96.0.10", 53, "UDP")] == table[("10.96.0.10", 53, "TCP")] == ["10.0.2.17"]
    scaled = {f.cluster_ip: f for f in frontends(article_spec(pods_per_node=3))}
    assert len(scaled["10.96.200.200"].backends) == 9
    assert len({b.backend_id for f in scaled.values() for b in f.backends}) == sum(
        len(f.backends) for f in scaled.values()
    )


def test_doctor_names_clang_and_its_fix_when_it_is_missing(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_without(tmp_path, {"clang"})}
    out = subprocess.run(
        [sys.executable, "-m", "labyrinth_tui", "doctor"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 1
    assert "✗ clang" in out.stdout
    assert "apt-get install -y clang llvm libbpf-dev" in out.stdout
    assert "Traceback" not in out.stderr
