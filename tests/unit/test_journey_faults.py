"""Stitching when things go wrong: retransmissions, lost packets, missed captures, concurrent connections."""

from __future__ import annotations

import random
from dataclasses import replace

from labyrinth_tui.journey.hops import ChangeKind, Journey, hops_of
from labyrinth_tui.journey.roles import Direction
from labyrinth_tui.journey.stitch import StitchResult, stitch
from labyrinth_tui.model.packets import PacketSummary
from tests.fakes.article import CLIENT_VETH, NODE1, NODE2, SERVICES
from tests.fakes.journey_article import PATH, ROLES, Capture, article_connection, tcp


def _stitch(cap: Capture) -> StitchResult:
    return stitch(cap.observations, SERVICES, ROLES, captured=tuple(ROLES))


def _syns(result: StitchResult) -> list[Journey]:
    return [j for j in result.journeys if j.tcp_flags == {"SYN"}]


def test_a_syn_lost_on_the_wire_is_last_seen_on_node1s_ens4_and_its_retransmission_arrives() -> None:
    cap = Capture(skew={NODE2: 0.5})
    cap.send(1.0, tcp(38430, 9999, "SYN", 1000, 0, 0), drop_after=3)  # never reaches node-2
    cap.send(2.0, tcp(38430, 9999, "SYN", 1000, 0, 0))  # the kernel resends it after 1 s
    cap.send(2.0006, tcp(9999, 38430, "SYN,ACK", 5000, 1001, 0, reply=True))
    cap.send(2.0012, tcp(38430, 9999, "ACK", 1001, 5001, 7))
    result = _stitch(cap)

    lost, resent = _syns(result)
    assert lost.transmission == 0 and resent.transmission == 1 and resent.retransmission
    assert [(h.node, h.interface) for h in lost.hops] == list(PATH[:3])
    assert lost.vanished and lost.expected_next == (NODE2, "ens4")
    assert [h.last_seen for h in lost.hops] == [False, False, True]
    assert lost.unseen == PATH[3:]
    assert [(h.node, h.interface) for h in resent.hops] == list(PATH) and not resent.vanished

    (handshake,) = result.handshakes()
    assert handshake.syn is resent and handshake.syn_sent == 2 and handshake.complete


def test_a_retransmission_seen_everywhere_is_a_second_journey_not_twelve_hops() -> None:
    cap = Capture()
    cap.send(1.0, tcp(38430, 9999, "SYN", 1000, 0, 0))
    cap.send(2.0, tcp(38430, 9999, "SYN", 1000, 0, 0))  # same seq, same IP id 0: same key
    first, second = _syns(_stitch(cap))
    assert len(first.hops) == len(second.hops) == 6
    assert (first.transmission, second.transmission) == (0, 1)
    assert first.start == 1.0 and second.start == 2.0


def test_a_data_retransmission_with_a_new_ip_id_is_counted_as_one() -> None:
    cap = Capture()
    cap.send(1.0, tcp(38430, 9999, "PSH,ACK", 1001, 5001, 10, payload_hash=0xA5DF, length=82))
    cap.send(1.3, tcp(38430, 9999, "PSH,ACK", 1001, 5001, 11, payload_hash=0xA5DF, length=82))
    data = [j for j in _stitch(cap).journeys if j.tcp_flags == {"PSH", "ACK"}]
    assert [j.transmission for j in data] == [0, 1]
    assert [j.first.ip_id for j in data] == [10, 11]


def test_duplicate_acks_are_distinct_packets_not_retransmissions() -> None:
    cap = Capture()
    for i, t in enumerate((1.0, 1.01, 1.02)):
        cap.send(t, tcp(9999, 38430, "ACK", 5001, 1001, 300 + i, reply=True, length=66))
    acks = _stitch(cap).journeys
    assert len(acks) == 3 and all(len(j.hops) == 6 for j in acks)
    assert [j.transmission for j in acks] == [0, 0, 0]


def test_a_packet_the_capture_missed_on_one_hop_is_a_gap_not_a_loss() -> None:
    cap = Capture()
    cap.send(1.0, tcp(38430, 9999, "SYN", 1000, 0, 0), skip=((NODE2, "cilium_vxlan"),))
    cap.send(1.5, tcp(38430, 9999, "ACK", 1001, 5001, 8))  # node-2's cilium_vxlan saw other packets
    (syn,) = _syns(_stitch(cap))
    assert [(h.node, h.interface) for h in syn.hops] == [*PATH[:4], PATH[5]]
    assert syn.unseen == ((NODE2, "cilium_vxlan"),)
    assert not syn.vanished and not syn.hops[-1].last_seen
    assert [c.kind.value for c in syn.hops[-1].changes] == ["decap"]  # vs ens4, the hop before it


def test_a_syn_dropped_after_dnat_on_node1_is_last_seen_on_the_clients_lxc() -> None:
    cap = Capture()
    cap.send(1.0, tcp(38430, 9999, "SYN", 1000, 0, 0), drop_after=1)
    (syn,) = _syns(_stitch(cap))
    (hop,) = syn.hops
    assert (hop.node, hop.interface, hop.dst, hop.last_seen) == (
        NODE1,
        CLIENT_VETH,
        "10.105.134.33:9999",
        True,
    )
    # the service has one endpoint, so where it was going is known even though it never got there
    assert syn.receiver == NODE2 and syn.expected_next == (NODE1, "cilium_vxlan")


def test_a_reply_lost_before_the_client_is_last_seen_on_node1s_cilium_vxlan() -> None:
    cap = Capture()
    cap.send(1.0, tcp(9999, 38430, "SYN,ACK", 5000, 1001, 0, reply=True), drop_after=5)
    (syn_ack,) = _stitch(cap).journeys
    assert syn_ack.hops[-1].last_seen and (syn_ack.hops[-1].node, syn_ack.hops[-1].interface) == (
        NODE1,
        "cilium_vxlan",
    )
    assert syn_ack.expected_next == (NODE1, CLIENT_VETH)


def test_two_concurrent_connections_are_never_mixed() -> None:
    cap = Capture(skew={NODE2: -0.2})
    # same instant, same ISN, same IP ids: only the client port tells them apart
    article_connection(cap, 5.0, cport=38430, isn=777)
    article_connection(cap, 5.0001, cport=41208, isn=777)
    result = _stitch(cap)
    handshakes = result.handshakes()
    assert [h.client for h in handshakes] == ["10.0.1.15:38430", "10.0.1.15:41208"]
    assert all(h.complete for h in handshakes)
    for h in handshakes:
        port = int(h.client.rsplit(":", 1)[1])
        for journey in h.journeys:
            assert len(journey.hops) == 6
            assert all(port in (p.sport, p.dport) for p in journey.observations)
    assert len(result.dns_phase(client="10.0.1.15").exchanges) == 8
    assert sum(len(j.observations) for j in result.journeys) == len(cap.observations)


def test_the_input_order_does_not_matter() -> None:
    cap = Capture(skew={NODE2: 0.5})
    article_connection(cap, 1.0)
    cap.send(3.0, tcp(38430, 9999, "SYN", 1000, 0, 0), drop_after=4)
    cap.send(4.0, tcp(38430, 9999, "SYN", 1000, 0, 0))
    in_order = _stitch(cap)
    shuffled = list(cap.observations)
    random.Random(7).shuffle(shuffled)
    by_stream_backwards = sorted(cap.observations, key=lambda p: (p.node, p.interface, -p.ts))
    for observations in (shuffled, by_stream_backwards, cap.observations[::-1]):
        again = stitch(observations, SERVICES, ROLES, captured=tuple(ROLES))
        assert again.journeys == in_order.journeys
        assert again.clock_offsets == in_order.clock_offsets


def test_a_fast_retransmission_within_milliseconds_is_still_told_apart() -> None:
    cap = Capture()
    segment = tcp(38430, 9999, "PSH,ACK", 1001, 5001, 0, payload_hash=0xBEEF, length=82)
    cap.send(1.0, segment, drop_after=3)
    cap.send(1.003, segment)  # 3 ms later, well inside the hop window: same IP id 0, same everything
    lost, resent = _stitch(cap).journeys
    assert [(h.node, h.interface) for h in lost.hops] == list(PATH[:3]) and lost.vanished
    assert [(h.node, h.interface) for h in resent.hops] == list(PATH) and resent.transmission == 1
    assert resent.hops[0].time == 1.003


def test_an_unanswered_syn_is_an_incomplete_handshake_with_every_attempt_counted() -> None:
    cap = Capture()
    for t in (1.0, 2.0, 4.0):  # the kernel's backoff
        cap.send(t, tcp(38430, 9999, "SYN", 1000, 0, 0), drop_after=2)
    (handshake,) = _stitch(cap).handshakes()
    assert not handshake.complete and handshake.syn_ack is None and handshake.ack is None
    assert handshake.syn_sent == 3
    assert handshake.syn is not None and handshake.syn.start == 1.0
    assert handshake.syn.expected_next == (NODE1, "ens4")


def test_vxlan_that_tshark_did_not_decode_is_stitched_between_the_two_ens4() -> None:
    # the article's `tshark -i ens4 -f udp`: only the outer packet, UDP 45304 → 8472, no VNI decoded
    seen = [
        PacketSummary(
            ts,
            node,
            "ens4",
            1,
            "10.168.0.4",
            "10.168.0.5",
            "UDP",
            124,
            "45304 → 8472 Len=82",
            sport=45304,
            dport=8472,
            ip_id=0x5A17,
        )
        for ts, node in ((1.000050, NODE1), (1.500200, NODE2))
    ]
    (journey,) = stitch(seen, SERVICES, ROLES).journeys
    assert [(h.node, h.direction) for h in journey.hops] == [
        (NODE1, Direction.EGRESS),
        (NODE2, Direction.INGRESS),
    ]
    assert (journey.sender, journey.receiver) == (NODE1, NODE2) and not journey.vanished


def test_an_unanswered_syn_says_the_hop_it_was_last_seen_on_and_the_one_it_never_reached() -> None:
    cap = Capture()
    for t in (1.0, 2.0):
        cap.send(t, tcp(38430, 9999, "SYN", 1000, 0, 0), drop_after=3)  # leaves node-1, never on node-2
    (handshake,) = _stitch(cap).handshakes()
    assert handshake.stalled == (
        "no SYN-ACK: the SYN (sent 2×) was last seen on node-1/ens4 "
        "(egress, 10.0.1.15:38430 → 10.0.2.215:9999), never on node-2/ens4"
    )


def test_a_lost_syn_ack_is_said_too_and_a_complete_handshake_says_nothing() -> None:
    cap = Capture()
    cap.send(1.0, tcp(38430, 9999, "SYN", 1000, 0, 0))
    cap.send(1.0006, tcp(9999, 38430, "SYN,ACK", 5000, 1001, 0, reply=True), drop_after=4)
    (handshake,) = _stitch(cap).handshakes()
    assert handshake.stalled == (
        "no ACK: the SYN-ACK was last seen on node-1/ens4 (ingress, 10.0.2.215:9999 → 10.0.1.15:38430), "
        "never on node-1/cilium_vxlan"
    )
    done = Capture()
    article_connection(done, 1.0)
    assert all(h.stalled is None for h in _stitch(done).handshakes())


def test_packets_of_one_flow_share_a_hop_plan_but_each_shows_its_own_times_and_outer_ports() -> None:
    cap = Capture(skew={NODE2: 0.5})
    cap.send(1.0, tcp(38430, 9999, "PSH,ACK", 1001, 5001, 8, payload_hash=11))
    cap.send(1.5, tcp(38430, 9999, "PSH,ACK", 1101, 5001, 9, payload_hash=12))
    result = _stitch(cap)
    first, second = (hops_of([j])[0] for j in result.journeys)
    encap_first = next(h for h in first if h.outer is not None)
    encap_second = next(h for h in second if h.outer is not None)
    assert encap_first.outer != encap_second.outer  # each send got its own outer source port
    (encap,) = encap_second.changes
    assert encap.kind is ChangeKind.ENCAP and encap_second.outer in encap.text
    assert second[0].time == 1.5 and second[3].captured_time > 2.0  # node-2's clock, 500 ms ahead
    assert [h.src for h in first] == [h.src for h in second]


def test_hops_from_the_shared_plans_are_those_each_journey_gets_on_its_own() -> None:
    cap = Capture(skew={NODE2: 0.5})
    article_connection(cap, 1.0)
    cap.send(9.0, tcp(38430, 9999, "SYN", 1000, 0, 0), drop_after=3)
    result = _stitch(cap)
    shared = hops_of(result.journeys)
    alone = [replace(j, ctx=replace(result.context, plans={})).hops for j in result.journeys]
    assert shared == alone and len(shared) == len(result.journeys) > 5
