"""Inventories: a user's YAML file, or the nodes `labyrinth gcp up` saved; how SSH reaches each node."""

from __future__ import annotations

from pathlib import Path

import pytest

from labyrinth_tui.cloud.bootstrap.inventory import InventoryError, inventory_from_gcp, parse_inventory
from labyrinth_tui.cloud.gcp.spec import NodeAccess
from labyrinth_tui.cloud.gcp.state import ClusterState, StateDir


def test_the_first_node_is_the_control_plane_and_fields_fall_back(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("k")
    inv = parse_inventory(
        f"nodes:\n  - {{name: node-0, internal_ip: 10.168.0.2, user: root, key: {key}}}\n"
        "  - {name: node-1, address: vm1.example, port: 2222}\n",
        "/etc/mine.yaml",
    )
    assert (
        inv.cluster == "mine"
        and inv.control_plane.name == "node-0"
        and inv.control_plane.role == "control-plane"
    )
    assert [w.name for w in inv.workers] == ["node-1"]
    assert not inv.control_plane.needs_sudo and inv.workers[0].needs_sudo  # root needs no sudo
    conn = inv.connector(inv.control_plane)
    assert (conn.host, conn.port, conn.username, conn.client_keys) == ("10.168.0.2", None, "root", [str(key)])
    worker = inv.connector(inv.workers[0], address="10.168.0.4")
    assert (worker.host, worker.port) == ("vm1.example", 2222)  # the inventory wins over the API's address
    assert parse_inventory(inv.to_yaml(), "again.yaml") == inv


def test_a_named_control_plane_may_come_later() -> None:
    inv = parse_inventory("nodes:\n  - {name: a}\n  - {name: b, role: control-plane}\n", "x.yaml")
    assert inv.control_plane.name == "b" and [w.name for w in inv.workers] == ["a"]
    with pytest.raises(InventoryError, match="one control plane only"):
        parse_inventory(
            "nodes:\n  - {name: a, role: control-plane}\n  - {name: b, role: control-plane}\n", "x"
        )
    with pytest.raises(InventoryError, match="role 'master' is not one of"):
        parse_inventory("nodes:\n  - {name: a, role: master}\n", "x")
    with pytest.raises(InventoryError, match="port 70000 is not a TCP port"):
        parse_inventory("nodes:\n  - {name: a, port: 70000}\n", "x")
    with pytest.raises(InventoryError, match="user 'Root;' is not valid"):
        parse_inventory("nodes:\n  - {name: a, user: 'Root;'}\n", "x")


def test_gcp_up_nodes_become_an_inventory(tmp_path: Path) -> None:
    nodes = [
        NodeAccess("node-0", "10.168.0.2", "34.86.0.10", "labyrinth", "/k/id_ed25519"),
        NodeAccess("node-1", "10.168.0.4", "34.86.0.11", "labyrinth", "/k/id_ed25519"),
        NodeAccess("node-2", "10.168.0.5", "34.86.0.12", "labyrinth", "/k/id_ed25519"),
    ]
    StateDir("lab", tmp_path).save(ClusterState("lab", "proj", "us-east4", "us-east4-b", nodes=nodes))
    inv = inventory_from_gcp("lab", tmp_path)
    assert inv.api_via == "node-0" and not inv.ssh_config
    assert inv.known_hosts == str(tmp_path / "gcp" / "lab" / "known_hosts")
    first = inv.control_plane
    assert (first.name, first.address, first.internal_ip, first.user) == (
        "node-0",
        "34.86.0.10",
        "10.168.0.2",
        "labyrinth",
    )
    assert inv.connector(first).known_hosts_path == tmp_path / "gcp" / "lab" / "known_hosts"
    with pytest.raises(InventoryError, match="run `labyrinth gcp up --cluster other`"):
        inventory_from_gcp("other", tmp_path)


def test_a_lab_node_is_reached_inside_its_netns_with_the_key_pinned_from_known_hosts(tmp_path: Path) -> None:
    import asyncssh

    from labyrinth_tui.nodes.connect import NetnsConnector

    key = tmp_path / "id"
    key.write_text("k")
    host_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"10.168.0.4 {host_key}\n")
    text = (
        f"known_hosts: {known}\nnodes:\n"
        f"  - {{name: node-1, address: 10.168.0.4, user: root, key: {key}, netns: jz1.node-1}}\n"
        f"  - {{name: node-2, address: 10.168.0.5, user: root, key: {key}, netns: jz1.node-2}}\n"
    )
    inv = parse_inventory(text, "lab.yaml")
    conn = inv.connector(inv.nodes[0])
    assert isinstance(conn, NetnsConnector)
    assert (conn.netns, conn.address, conn.port, conn.host_key_line) == (
        "jz1.node-1",
        "10.168.0.4",
        22,
        host_key,
    )
    assert parse_inventory(inv.to_yaml(), "again.yaml") == inv
    with pytest.raises(InventoryError, match=f"{known} has no host key for 10.168.0.5"):
        inv.connector(inv.nodes[1])
    with pytest.raises(InventoryError, match="node node-1: unsafe netns name"):
        parse_inventory("nodes:\n  - {name: node-1, netns: '../x'}\n", "bad.yaml")


def test_sudo_is_said_or_follows_the_user() -> None:
    inv = parse_inventory(
        "nodes:\n  - {name: a, user: root}\n  - {name: b, user: ubuntu}\n"
        "  - {name: c, user: ubuntu, sudo: false}\n  - {name: d, user: root, sudo: true}\n",
        "s.yaml",
    )
    assert [n.needs_sudo for n in inv.nodes] == [False, True, False, True]
    assert "sudo: true" in inv.to_yaml() and parse_inventory(inv.to_yaml(), "again.yaml") == inv
    with pytest.raises(InventoryError, match=r"^s\.yaml: node a: sudo must be true or false, got 'yes'$"):
        parse_inventory("nodes:\n  - {name: a, sudo: 'yes'}\n", "s.yaml")
