"""The article's connection, stitched: the SYN's six hops with DNAT and VXLAN, the replies, the DNS walk."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from labyrinth_tui.journey.clock import ClockMethod
from labyrinth_tui.journey.hops import Change, ChangeKind
from labyrinth_tui.journey.roles import Direction, Role
from labyrinth_tui.journey.stitch import StitchResult, journey_jsonable, stitch
from tests.fakes.article import (
    CLIENT_VETH,
    CLUSTER_IP,
    NODE1,
    NODE2,
    SERVER_VETH,
    SERVICE_NAME,
    SERVICES,
    VNI,
)
from tests.fakes.journey_article import PATH, ROLES, WALK, Capture, article_connection

EGRESS, INGRESS = Direction.EGRESS, Direction.INGRESS


@pytest.fixture
def article() -> StitchResult:
    cap = Capture(skew={NODE2: 0.5})  # node-2's clock is 500 ms ahead of node-1's
    article_connection(cap, 10.0)
    return stitch(cap.observations, SERVICES, ROLES)


def test_the_syn_crosses_the_six_hops_of_the_article_in_order(article: StitchResult) -> None:
    (handshake,) = article.handshakes()
    syn = handshake.syn
    assert syn is not None
    hops = syn.hops
    assert [(h.node, h.interface) for h in hops] == list(PATH)
    assert [h.direction for h in hops] == [EGRESS, EGRESS, EGRESS, INGRESS, INGRESS, INGRESS]
    assert [h.role for h in hops] == [
        Role.HOST_VETH,
        Role.OVERLAY,
        Role.UNDERLAY,
        Role.UNDERLAY,
        Role.OVERLAY,
        Role.HOST_VETH,
    ]
    assert not syn.vanished and not any(h.last_seen for h in hops)
    assert handshake.client == "10.0.1.15:38430"
    assert handshake.server == f"{CLUSTER_IP}:9999"
    assert handshake.endpoint == "10.0.2.215:9999"


def test_the_dnat_is_marked_between_the_clients_lxc_and_cilium_vxlan(article: StitchResult) -> None:
    syn = article.handshakes()[0].syn
    assert syn is not None
    hops = syn.hops
    assert hops[0].dst == "10.105.134.33:9999"  # what the client asked for, on lxc1ba60d50596c
    assert all(h.dst == "10.0.2.215:9999" for h in hops[1:])  # the pod IP from cilium_vxlan on
    assert hops[1].changes == (Change(ChangeKind.DNAT, "10.105.134.33:9999", "10.0.2.215:9999"),)
    assert hops[1].changes[0].text == "DNAT 10.105.134.33:9999 → 10.0.2.215:9999"
    dnat_at = [i for i, h in enumerate(hops) for c in h.changes if c.kind is ChangeKind.DNAT]
    assert dnat_at == [1]


def test_the_vni_and_the_outer_udp_8472_show_on_both_ens4(article: StitchResult) -> None:
    syn = article.handshakes()[0].syn
    assert syn is not None
    hops = syn.hops
    assert [h.vni for h in hops] == [None, None, VNI, VNI, None, None]
    outer = hops[2].outer
    assert outer is not None and outer == hops[3].outer
    assert outer.startswith("10.168.0.4:") and outer.endswith(" → 10.168.0.5:8472")
    assert [c.kind for c in hops[2].changes] == [ChangeKind.ENCAP]
    assert hops[2].changes[0].text == f"encap VXLAN VNI {VNI} {outer}"
    assert hops[3].changes == ()  # the same packet on the wire, seen from the other end
    assert [c.kind for c in hops[4].changes] == [ChangeKind.DECAP]
    assert hops[2].src == hops[3].src == "10.0.1.15:38430"  # ens4 shows the inner packet too


def test_node2_is_put_on_node1s_clock(article: StitchResult) -> None:
    offset = article.clock_offsets[NODE2]
    assert offset.method is ClockMethod.TWO_WAY
    assert offset.offset == pytest.approx(0.5, abs=1e-9)
    assert offset.uncertainty == pytest.approx(150e-6, abs=1e-9)  # half the fastest ens4 round trip
    assert article.clock_offsets[NODE1].method is ClockMethod.REFERENCE
    syn = article.handshakes()[0].syn
    assert syn is not None
    hops = syn.hops
    assert hops[3].captured_time - hops[2].captured_time == pytest.approx(0.50015)
    assert hops[3].since_previous == pytest.approx(150e-6)  # the wire, not the skew
    assert [h.since_previous for h in hops] == pytest.approx([None, 30e-6, 20e-6, 150e-6, 25e-6, 15e-6])


def test_the_syn_ack_comes_back_and_is_un_dnated_on_the_clients_lxc(article: StitchResult) -> None:
    syn_ack = article.handshakes()[0].syn_ack
    assert syn_ack is not None
    hops = syn_ack.hops
    assert [(h.node, h.interface) for h in hops] == list(PATH[::-1])
    assert [h.direction for h in hops] == [EGRESS, EGRESS, EGRESS, INGRESS, INGRESS, INGRESS]
    assert hops[2].outer is not None and hops[2].outer.startswith("10.168.0.5:")
    assert hops[2].outer.endswith(" → 10.168.0.4:8472")
    assert hops[-2].src == "10.0.2.215:9999"
    assert hops[-1].src == "10.105.134.33:9999"  # the client only ever sees the ClusterIP
    assert hops[-1].changes == (Change(ChangeKind.UNDNAT, "10.0.2.215:9999", "10.105.134.33:9999"),)


def test_the_handshake_is_three_journeys_in_time_order(article: StitchResult) -> None:
    (handshake,) = article.handshakes()
    assert handshake.complete and handshake.syn_sent == 1
    syn, syn_ack, ack = handshake.journeys
    assert syn.tcp_flags == {"SYN"} and syn_ack.tcp_flags == {"SYN", "ACK"} and ack.tcp_flags == {"ACK"}
    assert syn.end < syn_ack.start and syn_ack.end < ack.start
    assert ack.first.ack == syn_ack.first.seq + 1


def test_the_dns_phase_is_the_search_walk_then_the_answer(article: StitchResult) -> None:
    phase = article.dns_phase(SERVICE_NAME)
    assert phase.walk == WALK
    assert [(e.name, e.qtype, e.status) for e in phase.exchanges] == [
        (WALK[0], "A", "NXDOMAIN"),
        (WALK[0], "AAAA", "NXDOMAIN"),
        (WALK[1], "A", "NOERROR"),
        (WALK[1], "AAAA", "NOERROR"),
    ]
    assert phase.answer is not None
    assert (phase.answer.name, phase.answer.answer) == (WALK[1], CLUSTER_IP)


def test_a_dns_query_crosses_nat_and_vxlan_to_kube_dns_on_node2(article: StitchResult) -> None:
    exchange = article.dns_phase(SERVICE_NAME).exchanges[0]
    query = exchange.query.hops
    assert [(h.node, h.interface) for h in query] == list(PATH[:5])  # kube-dns's own lxc is not captured
    assert query[0].dst == "10.96.0.10:53" and query[1].dst == "10.0.2.17:53"
    assert query[1].changes == (Change(ChangeKind.DNAT, "10.96.0.10:53", "10.0.2.17:53"),)
    assert not exchange.query.vanished
    assert exchange.response is not None
    response = exchange.response.hops
    assert (response[0].node, response[0].interface) == (NODE2, "cilium_vxlan")
    assert (response[-1].node, response[-1].interface, response[-1].src) == (
        NODE1,
        CLIENT_VETH,
        "10.96.0.10:53",
    )


def test_dns_ids_are_read_from_the_info_line_when_the_capture_did_not_give_them() -> None:
    cap = Capture()
    article_connection(cap, 10.0)
    stripped = [replace(p, dns_id=None, dns_qtype=None, dns_rcode=None) for p in cap.observations]
    phase = stitch(stripped, SERVICES, ROLES).dns_phase(SERVICE_NAME)
    assert [(e.qtype, e.status) for e in phase.exchanges] == [
        ("A", "NXDOMAIN"),
        ("AAAA", "NXDOMAIN"),
        ("A", "NOERROR"),
        ("AAAA", "NOERROR"),
    ]
    assert all(len(e.query.hops) == 5 and e.response is not None for e in phase.exchanges)


def test_journey_json_has_each_hop_with_what_changed(article: StitchResult) -> None:
    syn = article.handshakes()[0].syn
    assert syn is not None
    shown = json.loads(json.dumps(journey_jsonable(syn)))
    assert [h["interface"] for h in shown["hops"]] == [i for _, i in PATH]
    assert shown["hops"][1]["changes"] == ["DNAT 10.105.134.33:9999 → 10.0.2.215:9999"]
    assert shown["hops"][2]["vni"] == VNI
    assert shown["hops"][5]["interface"] == SERVER_VETH and shown["vanished"] is False


def test_without_roles_interfaces_get_roles_from_their_names() -> None:
    cap = Capture()
    article_connection(cap, 10.0)
    result = stitch(cap.observations, SERVICES)  # no roles: lxc… host_veth, cilium_vxlan, ens4
    syn = result.handshakes()[0].syn
    assert syn is not None
    assert [h.role for h in syn.hops] == [
        Role.HOST_VETH,
        Role.OVERLAY,
        Role.UNDERLAY,
        Role.UNDERLAY,
        Role.OVERLAY,
        Role.HOST_VETH,
    ]
    # the senders are learnt from where encapsulation happened on each node's own clock
    assert (syn.sender, syn.receiver) == (NODE1, NODE2)
    assert [h.direction for h in syn.hops[1:5]] == [EGRESS, EGRESS, INGRESS, INGRESS]
