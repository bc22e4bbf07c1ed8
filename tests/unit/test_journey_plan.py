"""The journey's hops come from the topology and the nodes' routes: the article's six, and other shapes."""

from __future__ import annotations

import pytest

from labyrinth_tui.journey.article import HOP_FILTER
from labyrinth_tui.journey.plan import plan_hops, resolve_ends, route_queries
from labyrinth_tui.journey.request import JourneyRequest, RequestError
from labyrinth_tui.journey.roles import Role
from labyrinth_tui.model.topology import Interface, InterfaceKind, Route
from labyrinth_tui.probes.iproute import DiscoveryError, parse_route_get
from tests.unit.journey_topology import CLIENT, EXTRA_2, SECOND, SERVER, topology, vxlan_routes


def test_the_articles_pair_gives_the_articles_six_hops_and_filter() -> None:
    topo = topology()
    ends = resolve_ends(topo, JourneyRequest())
    assert set(route_queries(ends)) == set(vxlan_routes())
    plan = plan_hops(ends, vxlan_routes())
    assert plan.streams == (
        ("node-1", "lxc1ba60d50596c"),
        ("node-1", "cilium_vxlan"),
        ("node-1", "ens4"),
        ("node-2", "ens4"),
        ("node-2", "cilium_vxlan"),
        ("node-2", "lxc91a2bea4a8f8"),
    )
    assert plan.capture_filter == HOP_FILTER
    assert plan.notes == ()
    assert [h.role.role for h in plan.hops] == [Role.HOST_VETH, Role.OVERLAY, Role.UNDERLAY] * 1 + [
        Role.UNDERLAY,
        Role.OVERLAY,
        Role.HOST_VETH,
    ]
    assert plan.roles(topo)[("node-1", "ens4")].node_ip == "10.168.0.4"


def test_a_same_node_pair_is_veth_to_veth_and_asks_no_route() -> None:
    ends = resolve_ends(
        topology(), JourneyRequest(client="scale/extra-node-2-000", target="node-wrk-2-ubuntu24.wrk-2")
    )
    assert [s.pod for s in ends.servers] == [SERVER]
    assert route_queries(ends) == ()
    plan = plan_hops(ends, {})
    assert plan.streams == (("node-2", EXTRA_2.host_veth), ("node-2", SERVER.host_veth))
    assert plan.capture_filter == "udp port 53 or tcp port 9999"


def test_direct_routing_has_no_overlay_hop_and_no_vxlan_in_the_filter() -> None:
    routes: dict[tuple[str, str], Route | str] = {
        ("node-1", SERVER.ip): Route(SERVER.ip, "10.168.0.5", "ens4"),
        ("node-2", CLIENT.ip): Route(CLIENT.ip, "10.168.0.4", "ens4"),
    }
    plan = plan_hops(resolve_ends(topology(overlay=None), JourneyRequest()), routes)
    assert plan.streams == (
        ("node-1", CLIENT.host_veth),
        ("node-1", "ens4"),
        ("node-2", "ens4"),
        ("node-2", SERVER.host_veth),
    )
    assert plan.capture_filter == "udp port 53 or tcp port 9999"


def test_a_pod_target_by_ip_with_a_target_port_and_geneve() -> None:
    geneve = Interface("cilium_geneve", 5, InterfaceKind.DEVICE, link_kind="geneve")
    topo = topology(overlay=geneve)
    routes = {
        k: Route(v.dst, v.gateway, "cilium_geneve" if v.dev == "cilium_vxlan" else v.dev)
        for k, v in vxlan_routes().items()
        if isinstance(v, Route)
    }
    ends = resolve_ends(topo, JourneyRequest(target="wrk-2/node-wrk-2-ubuntu24", port=7000))
    assert (ends.service, ends.target_host, ends.port) == (None, SERVER.ip, 7000)
    plan = plan_hops(ends, routes)
    assert [i for _, i in plan.streams][1:5] == ["cilium_geneve", "ens4", "ens4", "cilium_geneve"]
    assert plan.capture_filter == "tcp port 7000 or udp port 6081"


def test_a_service_with_backends_on_two_nodes_captures_on_both() -> None:
    topo = topology(second_backend=True)
    ends = resolve_ends(topo, JourneyRequest())
    assert {s.pod.name for s in ends.servers} == {SERVER.name, SECOND.name}
    plan = plan_hops(ends, vxlan_routes())
    assert plan.streams[-1] == ("node-1", SECOND.host_veth)
    assert ("node-2", SERVER.host_veth) in plan.streams and len(plan.streams) == 7


def test_an_unknown_route_is_said_and_discovery_s_devices_are_captured() -> None:
    routes = vxlan_routes()
    routes[("node-1", SERVER.ip)] = "RTNETLINK answers: Network is unreachable"
    plan = plan_hops(resolve_ends(topology(), JourneyRequest()), routes)
    assert plan.notes[0] == (
        "node-1: the route to 10.0.2.215 could not be determined (RTNETLINK answers: Network is unreachable)"
    )
    assert "node-1: capturing on cilium_vxlan, ens4 instead" in plan.notes
    assert plan.streams[:3] == (("node-1", CLIENT.host_veth), ("node-1", "cilium_vxlan"), ("node-1", "ens4"))


def test_nothing_is_captured_on_a_device_discovery_did_not_find() -> None:
    routes = vxlan_routes()
    routes[("node-1", SERVER.ip)] = Route(SERVER.ip, None, "weird0")
    plan = plan_hops(resolve_ends(topology(), JourneyRequest()), routes)
    assert all(i != "weird0" for _, i in plan.streams)
    assert any("weird0" in n and "not among the interfaces discovery found" in n for n in plan.notes)


def test_an_unreachable_server_node_is_marked_and_the_client_side_kept() -> None:
    plan = plan_hops(resolve_ends(topology(unreachable="node-2"), JourneyRequest()), vxlan_routes())
    assert {n for n, _ in plan.streams} == {"node-1"} and len(plan.streams) == 3
    assert any(n.startswith("node-2: not discovered (connection refused)") for n in plan.notes)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            JourneyRequest(client="wrk-1/nope"),
            "no pod 'wrk-1/nope' in the topology; pods there: wrk-1/node-wrk-1",
        ),
        (
            JourneyRequest(target="nope.wrk-2"),
            "no service 'nope.wrk-2'; services: node-wrk-2-ubuntu24.wrk-2, web.scale",
        ),
        (
            JourneyRequest(port=80),
            "service node-wrk-2-ubuntu24.wrk-2 has no port 80/tcp (ports: 9999/tcp, 9999/udp)",
        ),
        (JourneyRequest(target="wrk-2/node-wrk-2-ubuntu24", port=None), "give the port"),
    ],
)
def test_ends_that_are_not_there_are_said(request_: JourneyRequest, message: str) -> None:
    with pytest.raises(RequestError, match=None) as failed:
        resolve_ends(topology(), request_)
    assert message in str(failed.value)


def test_a_service_port_is_found_when_the_request_gives_none() -> None:
    ends = resolve_ends(
        topology(), JourneyRequest(client="wrk-1/node-wrk-1-ubuntu24", target="web.scale", port=None)
    )
    assert (ends.port, ends.target_port, ends.target_ip) == (80, 8080, "10.96.7.7")
    assert plan_hops(ends, {}).capture_filter.startswith("udp port 53 or tcp port 80 or tcp port 8080")


def test_request_parsing() -> None:
    assert JourneyRequest.parse() == JourneyRequest()
    r = JourneyRequest.parse("scale/extra-node-2-000", "web.scale:80", "udp", "hi")
    assert (r.client, r.target, r.port, r.proto, r.payload) == (
        "scale/extra-node-2-000",
        "web.scale",
        80,
        "udp",
        "hi\n",
    )
    assert JourneyRequest.parse(to="wrk-2/pod").target_is_pod
    for bad, why in [
        (dict(to="web:80"), "a service is SERVICE.NAMESPACE"),
        (dict(to="web.scale:0"), "the port must be 1-65535"),
        (dict(client="pod"), "give the pod as NAMESPACE/POD"),
        (dict(proto="sctp"), "use tcp or udp"),
    ]:
        with pytest.raises(RequestError) as failed:
            JourneyRequest.parse(**bad)  # type: ignore[arg-type]
        assert why in str(failed.value)


def test_route_get_is_parsed_and_an_answer_without_a_device_refused() -> None:
    out = (
        '[{"dst":"10.0.2.215","gateway":"10.0.2.244","dev":"cilium_vxlan","prefsrc":"10.0.1.49",'
        '"flags":["onlink"],"uid":0,"cache":[]}]'
    )
    assert parse_route_get(out) == Route("10.0.2.215", "10.0.2.244", "cilium_vxlan", "10.0.1.49")
    with pytest.raises(DiscoveryError):
        parse_route_get('[{"dst":"10.0.2.215","type":"unreachable"}]')
    with pytest.raises(DiscoveryError):
        parse_route_get("RTNETLINK answers")
