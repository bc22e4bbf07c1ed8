"""ClusterSource: the API's nodes and pods (stub API server) merged with SSH discovery (fake VMs)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from labyrinth_tui.cloud.bootstrap.inventory import Inventory, NodeEntry
from labyrinth_tui.cloud.kube.client import KubeClient
from labyrinth_tui.cloud.kube.errors import KubeUnreachable
from labyrinth_tui.cloud.kube.workloads import JourneyPods, deploy_journey
from labyrinth_tui.model.progress import StepState
from labyrinth_tui.model.topology import Topology
from labyrinth_tui.sources.base import ProgressEvent, SourceEvent, TopologyEvent
from labyrinth_tui.sources.cluster import ClusterSource
from tests.fakes import DATA
from tests.fakes.cluster_vms import Vms, fake_vms
from tests.fakes.kube_api import KubeApiStub

NODE2 = (DATA / "discovery_node2.txt").read_text()


async def journey(api: KubeApiStub, tmp_path: Path) -> JourneyPods:
    kube = KubeClient.from_config(api.admin_conf(), temp_dir=tmp_path)
    try:
        return await deploy_journey(kube, lambda step: None, timeout=3)
    finally:
        kube.close()


def kubeconfig(api: KubeApiStub, tmp_path: Path, server: str | None = None) -> Path:
    path = tmp_path / "admin.conf"
    path.write_text(yaml.safe_dump(api.admin_conf(server)))
    return path


async def start(source: ClusterSource) -> tuple[list[SourceEvent], Topology]:
    events: list[SourceEvent] = []
    try:
        await source.start(events.append)
    finally:
        await source.close()
    topologies = [e.topology for e in events if isinstance(e, TopologyEvent)]
    return events, topologies[-1]


async def test_the_api_alone_gives_nodes_pods_and_services(api: KubeApiStub, tmp_path: Path) -> None:
    pods = await journey(api, tmp_path)
    events, topo = await start(ClusterSource(kubeconfig(api, tmp_path), discover=False))
    assert topo.cluster == "kubernetes-admin@kubernetes"
    assert [(n.name, n.address, n.role) for n in topo.nodes] == [
        ("node-0", "10.168.0.2", "control-plane"),
        ("node-1", "10.168.0.4", "worker"),
        ("node-2", "10.168.0.5", "worker"),
    ]
    node1, node2 = topo.nodes[1], topo.nodes[2]
    assert [(p.qualified_name, p.ip) for p in node1.pods] == [(f"wrk-1/{pods.client.name}", "10.0.1.15")]
    assert {p.ip for p in node2.pods} == {"10.0.2.17", "10.0.2.215"}  # CoreDNS and the nc server
    assert not topo.nodes[0].pods  # kube-proxy and cilium share the node's netns: not pods of their own
    by_name = {s.name: s for s in topo.services}
    assert by_name["node-wrk-2-ubuntu24"].cluster_ip == "10.105.134.33"
    assert by_name["kube-dns"].endpoints == ("10.0.2.17",)
    steps = [e.step for e in events if isinstance(e, ProgressEvent)]
    assert [(s.name, s.state) for s in steps] == [("api", StepState.RUNNING), ("api", StepState.DONE)]


async def test_discovery_over_ssh_fills_in_the_tree_and_the_api_tunnel_reaches_6443(
    api: KubeApiStub, tmp_path: Path
) -> None:
    pods = await journey(api, tmp_path)
    async with fake_vms(tmp_path) as vms:
        vms["node-2"].discovery_output = NODE2  # what `sh -s` printed on the lab's node-2
        vms["node-0"].forwards[("10.168.0.2", 6443)] = ("127.0.0.1", api.port)
        source = ClusterSource(
            kubeconfig(api, tmp_path, "https://10.168.0.2:6443"), inventory=inventory(vms, api_via="node-0")
        )
        events, topo = await start(source)
    assert vms["node-0"].forwarded and set(vms["node-0"].forwarded) == {("10.168.0.2", 6443)}
    assert sum(isinstance(e, TopologyEvent) for e in events) == 2  # the API's at once, then discovery's
    node2 = topo.node("node-2")
    assert node2 is not None and node2.reachable and not node2.partial
    assert node2.address == "127.0.0.1" and node2.interface("cilium_vxlan") is not None
    found = {p.ip: p for p in node2.pods}
    server = found["10.0.2.215"]
    assert server.qualified_name == f"wrk-2/{pods.server.name}"  # the API's name on discovery's pod
    assert server.host_veth and server.host_veth.startswith("lxc") and server.netns
    node1 = topo.node("node-1")
    assert node1 is not None and node1.partial and "no interface listing" in (node1.error or "")
    assert [p.ip for p in node1.pods] == ["10.0.1.15"]  # still listed, from the API
    assert all(e.argv[:2] == ("sh", "-s") and e.sudo for e in vms["node-2"].execs)
    assert source.sessions == {} and source._certs is None  # close() let go of everything


def inventory(vms: Vms, api_via: str | None = None, down: tuple[str, ...] = ()) -> Inventory:
    known = vms.tmp / "known_hosts"
    known.write_text("".join(v.known_hosts_line for v in vms.vms))
    entries = tuple(
        NodeEntry(vm.name, "127.0.0.1", vm.internal_ip, "labyrinth", str(vm.client_key_path), vm.port)
        for vm in vms.vms
    )
    return Inventory("labyrinth", entries, api_via, str(known), ssh_config=False, source="test")


async def test_an_unreachable_node_keeps_its_api_pods_and_says_why(api: KubeApiStub, tmp_path: Path) -> None:
    await journey(api, tmp_path)
    async with fake_vms(tmp_path) as vms:
        vms["node-2"].discovery_output = NODE2
        inv = inventory(vms)
        await vms["node-1"].close()
        events, topo = await start(ClusterSource(kubeconfig(api, tmp_path), inventory=inv))
    node1 = topo.node("node-1")
    assert node1 is not None and not node1.reachable and "cannot connect" in (node1.error or "")
    assert [p.ip for p in node1.pods] == ["10.0.1.15"]
    assert topo.node("node-2") is not None and topo.node("node-2").reachable  # type: ignore[union-attr]
    discover = [e.step for e in events if isinstance(e, ProgressEvent) and e.step.name == "discover"][-1]
    assert discover.state is StepState.DONE and "node-1: " in discover.log


async def test_an_api_server_that_does_not_answer_fails_the_start(tmp_path: Path) -> None:
    async with KubeApiStub(tmp_path / "pki") as api:
        config = kubeconfig(api, tmp_path)
    events: list[SourceEvent] = []
    source = ClusterSource(config, discover=False)
    with pytest.raises(KubeUnreachable):
        await source.start(events.append)
    await source.close()
    last = events[-1]
    assert isinstance(last, ProgressEvent) and last.step.state is StepState.FAILED
    # nodes, pods and services are asked at once: whichever answer fails first is the one reported
    assert last.step.log.startswith(("list nodes:", "list pods:", "list services:", "list endpoint slices:"))
    assert "cannot reach the API server at https://127.0.0.1:" in last.step.log


async def test_the_tui_shows_an_attached_cluster(api: KubeApiStub, tmp_path: Path) -> None:
    from labyrinth_tui.ui.app import make_app
    from labyrinth_tui.ui.widgets.topology_tree import TopologyTree

    pods = await journey(api, tmp_path)
    app = make_app(ClusterSource(kubeconfig(api, tmp_path), discover=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        tree = app.screen.query_one(TopologyTree)
        tree.root.expand_all()
        await pilot.pause()
        labels = [str(tree.get_node_at_line(i).label) for i in range(tree.last_line + 1)]  # type: ignore[union-attr]
        shown = "\n".join(labels)
        for name in ("node-0", "node-1", "node-2", pods.client.name, pods.server.name):
            assert name in shown, name
        await app.source.close()  # type: ignore[union-attr]


async def test_a_login_sudo_refuses_is_one_line_in_the_tui_over_the_apis_tree(
    api: KubeApiStub, tmp_path: Path
) -> None:
    """Discovery's `sudo -n sh -s` meets "a password is required" on node-1: the start fails with one line
    naming node and command, shown as the source's failure; the API's tree stays on screen."""
    from textual.worker import WorkerFailed

    from labyrinth_tui.ui.app import make_app
    from labyrinth_tui.ui.widgets.topology_tree import TopologyTree

    await journey(api, tmp_path)
    async with fake_vms(tmp_path) as vms:
        vms["node-2"].discovery_output = NODE2
        vms["node-1"].sudo_password = True
        app = make_app(ClusterSource(kubeconfig(api, tmp_path), inventory=inventory(vms)))
        async with app.run_test(size=(120, 40)) as pilot:
            with pytest.raises(WorkerFailed):  # the source's worker ends in the error the screen shows
                await app.workers.wait_for_complete()
            await pilot.pause()
            said = [n.message for n in app._notifications]
            tree = app.screen.query_one(TopologyTree)
            shown = "\n".join(str(tree.get_node_at_line(i).label) for i in range(tree.last_line + 1))  # type: ignore[union-attr]
            await app.source.close()  # type: ignore[union-attr]
    assert said == [
        "node-1: sudo -n refused `sh -s`: a password is required "
        "(the SSH user needs passwordless sudo on the node, or log in as root)"
    ]
    assert all(name in shown for name in ("node-0", "node-1", "node-2"))
    assert not [e for e in vms["node-1"].execs if e.argv[:2] == ("sh", "-s")]  # nothing ran without sudo


async def test_an_inventory_node_the_api_does_not_list_is_let_go(api: KubeApiStub, tmp_path: Path) -> None:
    """Discovery starts on the inventory's nodes before the API answers; one the cluster lacks is closed."""
    await journey(api, tmp_path)
    async with fake_vms(tmp_path) as vms:
        vms["node-2"].discovery_output = NODE2
        inv = inventory(vms)
        extra = replace(inv.nodes[1], name="node-9")
        source = ClusterSource(kubeconfig(api, tmp_path), inventory=replace(inv, nodes=(*inv.nodes, extra)))
        try:
            await source.start(lambda event: None)
            kept = sorted(source.sessions)
        finally:
            await source.close()
    assert kept == ["node-0", "node-1", "node-2"]
    topo = source.topology
    assert topo is not None and [n.name for n in topo.nodes] == ["node-0", "node-1", "node-2"]
    assert topo.node("node-2").reachable  # type: ignore[union-attr]


async def test_an_api_that_fails_stops_the_discovery_started_beside_it(tmp_path: Path) -> None:
    """Discovery starts on the inventory's nodes at once; the API not answering stops every one of them."""
    import asyncio

    async with KubeApiStub(tmp_path / "pki") as api:
        config = kubeconfig(api, tmp_path)
    async with fake_vms(tmp_path) as vms:
        source = ClusterSource(config, inventory=inventory(vms))
        with pytest.raises(KubeUnreachable):
            await source.start(lambda event: None)
        early = [t for t in asyncio.all_tasks() if "discover_node" in repr(t.get_coro())]
        left = [t for t in early if not t.done() and not t.cancelling()]
        await source.close()
    assert early and left == []  # it had started, on every node
    assert source.sessions == {}
