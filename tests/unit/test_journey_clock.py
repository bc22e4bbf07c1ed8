"""Per-node clock offsets from the fastest packet each way, and roles read from a discovered topology."""

from __future__ import annotations

import pytest

from labyrinth_tui.journey.clock import ClockMethod, ClockSamples
from labyrinth_tui.journey.roles import InterfaceRole, Role, roles_from_topology
from labyrinth_tui.model.topology import Interface, InterfaceKind, Node, Pod, Topology


def test_two_way_offset_is_half_the_asymmetry_of_the_fastest_packets() -> None:
    samples = ClockSamples()
    # node-2 is 0.5 s ahead; the wire takes 150 µs at best, queues add more to some packets
    for delay in (150e-6, 400e-6, 2e-3):
        samples.add("node-1", "node-2", delay + 0.5)
        samples.add("node-2", "node-1", delay - 0.5)
    offsets = samples.estimate(["node-1", "node-2"])
    assert offsets["node-1"].method is ClockMethod.REFERENCE and offsets["node-1"].offset == 0.0
    two = offsets["node-2"]
    assert two.method is ClockMethod.TWO_WAY and two.compared_with == "node-1"
    assert two.offset == pytest.approx(0.5)
    assert two.uncertainty == pytest.approx(150e-6)
    assert two.samples == 6


def test_the_reference_can_be_any_node() -> None:
    samples = ClockSamples()
    samples.add("node-1", "node-2", 0.5002)
    samples.add("node-2", "node-1", -0.4998)
    assert samples.estimate(["node-1", "node-2"], "node-2")["node-1"].offset == pytest.approx(-0.5)


def test_one_direction_only_assumes_the_fastest_packet_took_no_time() -> None:
    samples = ClockSamples()
    samples.add("node-1", "node-2", 0.3001)
    samples.add("node-1", "node-2", 0.3005)
    two = samples.estimate(["node-1", "node-2"])["node-2"]
    assert two.method is ClockMethod.ONE_WAY
    assert two.offset == pytest.approx(0.3001) and two.uncertainty is None


def test_offsets_chain_through_nodes_and_a_silent_node_is_left_alone() -> None:
    samples = ClockSamples()
    samples.add("node-1", "node-2", 1.0 + 1e-4)
    samples.add("node-2", "node-1", -1.0 + 1e-4)
    samples.add("node-2", "node-3", -3.0 + 2e-4)  # node-3 is 2 s behind node-1, 3 s behind node-2
    samples.add("node-3", "node-2", 3.0 + 2e-4)
    offsets = samples.estimate(["node-0", "node-1", "node-2", "node-3"], "node-1")
    assert offsets["node-3"].offset == pytest.approx(-2.0)
    assert offsets["node-3"].compared_with == "node-2"
    assert offsets["node-3"].uncertainty == pytest.approx(3e-4)  # both links' bounds add up
    assert offsets["node-0"].method is ClockMethod.NONE and offsets["node-0"].offset == 0.0


def test_roles_come_from_the_discovered_tree() -> None:
    node = Node(
        name="node-1",
        address="10.168.0.4",
        interfaces=(
            Interface("ens4", 2, InterfaceKind.DEVICE, addresses=("10.168.0.4/24",)),
            Interface("cilium_vxlan", 5, InterfaceKind.VXLAN),
            Interface("cilium_host", 4, InterfaceKind.VETH, addresses=("10.0.1.49/32",)),
            Interface("lxc1ba60d50596c", 9, InterfaceKind.VETH),
        ),
        pods=(Pod("wrk-1", "node-wrk-1-ubuntu24", "10.0.1.15", "5b58d4f1", host_veth="lxc1ba60d50596c"),),
    )
    roles = roles_from_topology(Topology("labyrinth", (node,)))
    assert roles == {
        ("node-1", "ens4"): InterfaceRole(Role.UNDERLAY, node_ip="10.168.0.4"),
        ("node-1", "cilium_vxlan"): InterfaceRole(Role.OVERLAY),
        ("node-1", "lxc1ba60d50596c"): InterfaceRole(Role.HOST_VETH, pod_ip="10.0.1.15"),
    }
