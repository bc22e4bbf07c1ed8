"""The tour's checks and the journey's text and JSON, on the article's synthetic run and its failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labyrinth_tui.journey.text import journey_lines
from labyrinth_tui.journey.tour import tour_steps
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE
from tests.fakes.article import CLIENT_VETH, SERVER_VETH, VNI
from tests.fakes.article_journey import article_report


def _failed(steps: tuple[object, ...]) -> list[str]:
    return [s.title for s in steps if not s.passed]  # type: ignore[attr-defined]


def test_the_article_passes_every_step_with_what_was_seen() -> None:
    steps = tour_steps(article_report())
    assert _failed(steps) == []
    seen = {s.title: s.seen for s in steps}
    assert (
        "walk node-wrk-2-ubuntu24.wrk-2.wrk-1.svc.cluster.local → node-wrk-2-ubuntu24.wrk-2.svc.cluster.local"
        in (seen[f"the DNS search walk on the client's {CLIENT_VETH}"])
    )
    assert seen["the pod IP 10.0.2.215:9999 on cilium_vxlan"] == (
        "SYN 10.0.1.15:38430 → 10.0.2.215:9999 on node-1/cilium_vxlan"
    )
    assert (
        f"UDP 10.168.0.4:45312 → 10.168.0.5:8472 VNI {VNI}"
        in seen["UDP 8472 between 10.168.0.4 and 10.168.0.5 on both ens4"]
    )


def test_a_syn_lost_on_the_wire_fails_the_underlay_and_arrival_steps() -> None:
    steps = tour_steps(article_report(drop_syn_after=3))
    assert _failed(steps) == [
        "UDP 8472 between 10.168.0.4 and 10.168.0.5 on both ens4",
        f"arrival on the server pod's {SERVER_VETH}",
    ]
    assert steps[5].seen == f"the SYN was not seen on node-2/{SERVER_VETH}"


def test_counters_that_did_not_move_and_a_missing_veth_fail_their_steps() -> None:
    steps = tour_steps(article_report(counters=False, veth_present=False))
    assert _failed(steps) == [
        "the pods, their network namespaces and host veths",
        "kube-proxy's iptables counters on node-1 moved",
    ]
    assert "(veth missing)" in steps[0].seen
    assert steps[6].seen == "no rule of the service counted anything"


def test_journey_text_marks_dnat_encap_and_the_counters_beside_the_syn_only() -> None:
    lines = journey_lines(article_report())
    syn_vxlan = next(ln for ln in lines if "cilium_vxlan" in ln and "DNAT" in ln)
    assert syn_vxlan.split()[:3] == ["node-1", "cilium_vxlan", "egress"]
    assert "+30µs" in syn_vxlan
    assert sum("evidence: +1 pkt KUBE-SEP-FXHI2MOU7V5XIHJD → DNAT" in ln for ln in lines) == 1  # SYN, not ACK
    assert lines[1] == "clocks vs node-1: node-1 +0µs (reference), node-2 +2500µs (two-way)"


def test_json_has_the_syns_six_hops_and_survives_a_round_trip() -> None:
    data = json.loads(json.dumps(article_report().jsonable()))
    hops = data["handshake"]["syn"]["hops"]
    assert [h["interface"] for h in hops] == [
        CLIENT_VETH, "cilium_vxlan", "ens4", "ens4", "cilium_vxlan", SERVER_VETH,
    ]  # fmt: skip
    assert hops[1]["changes"] == ["DNAT 10.105.134.33:9999 → 10.0.2.215:9999"]
    assert [h["vni"] for h in hops] == [None, None, VNI, VNI, None, None]
    assert data["dns"]["answer"] == "10.105.134.33"
    assert data["clock_offsets"]["node-2"]["offset"] == pytest.approx(0.0025)


def test_the_recorded_bundle_stitches_like_a_live_run_with_its_evidence(tmp_path: Path) -> None:
    from labyrinth_tui.sources.journey_replay import NO_EVIDENCE, report_from_bundle

    report = report_from_bundle()
    hs = report.handshake
    assert hs is not None and hs.complete and hs.endpoint == "10.0.2.215:9999"
    assert hs.syn is not None and [h.interface for h in hs.syn.hops][1:5] == [
        "cilium_vxlan", "ens4", "ens4", "cilium_vxlan",
    ]  # fmt: skip
    assert report.problems == ()
    steps = tour_steps(report)
    assert _failed(steps) == []  # recorded on the eBPF datapath: kube-proxy bypassed, programs everywhere
    assert steps[-1].title == "kube-proxy's counters stay at 0; tcx programs on every Cilium device"
    # a recording without evidence (older ones) still stitches, and says what it lacks
    bare = tmp_path / "bare"
    shutil.copytree(ARTICLE_BUNDLE, bare)
    meta = json.loads((bare / "bundle.json").read_text())
    del meta["evidence"], meta["datapath"]
    (bare / "bundle.json").write_text(json.dumps(meta))
    old = report_from_bundle(bare)
    assert old.problems == (NO_EVIDENCE,)
    assert not tour_steps(old)[-1].passed and tour_steps(old)[-1].seen == "no evidence from node-1"


EBPF_STEP = "kube-proxy's counters stay at 0; tcx programs on every Cilium device"


def test_on_the_ebpf_datapath_the_last_step_is_kube_proxy_bypassed() -> None:
    steps = tour_steps(article_report(ebpf=True))
    assert _failed(steps) == []
    assert steps[-1].title == EBPF_STEP
    assert steps[-1].seen == (
        "node-1: 5 kube-proxy rules of the service, +0 packets; 8 tcx programs on every Cilium device; "
        "node-2: 5 kube-proxy rules of the service, +0 packets; 8 tcx programs on every Cilium device; "
        f"cil_from_container on {CLIENT_VETH} translated +9"
    )


def test_the_ebpf_step_fails_when_kube_proxy_counted_or_a_device_has_no_program() -> None:
    moved = tour_steps(article_report(ebpf=True, kube_moved=True))[-1]
    assert (moved.title, moved.passed) == (EBPF_STEP, False)
    assert "node-1: 5 kube-proxy rules of the service, +3 packets" in moved.seen
    bare = tour_steps(article_report(ebpf=True, without="lxc_health"))[-1]
    assert not bare.passed and "none on lxc_health/ingress" in bare.seen


def test_the_ebpf_journey_names_the_program_that_translated_and_kube_proxy_at_0() -> None:
    lines = journey_lines(article_report(ebpf=True))
    syn = lines[lines.index(next(ln for ln in lines if ln.startswith("SYN:"))) :]
    vxlan = next(i for i, ln in enumerate(syn) if "node-1  cilium_vxlan" in ln)
    assert syn[vxlan + 1 : vxlan + 5] == [
        f"      evidence: eBPF cil_from_container on node-1/{CLIENT_VETH} translated "
        "10.105.134.33:9999 → 10.0.2.215:9999 (+9 this run)",
        "      evidence: kube-proxy KUBE-SERVICES → KUBE-SVC-IWPXKGE4TAJJE4GD → "
        "KUBE-SEP-FXHI2MOU7V5XIHJD (DNAT): 0 packets — bypassed",
        "      evidence: eBPF tcx/ingress cil_from_overlay #500: +12 pkt, +9 translated",
        "      evidence: eBPF tcx/egress cil_to_overlay #501: +12 pkt",
    ]
    # the iptables datapath keeps today's evidence: the rules that counted the DNAT, nothing bypassed
    plain = "\n".join(journey_lines(article_report()))
    assert "bypassed" not in plain and "+1 pkt KUBE-SEP-FXHI2MOU7V5XIHJD → DNAT" in plain
