"""The lab attached as if it were a real cluster: the stub Kubernetes API serves the lab's nodes, pods and
services and runs exec for real in the pod's netns; SSH goes to the lab nodes' own sshd through the
inventory `labyrinth lab inventory` writes. The journey runs through ClusterSource, packets and all.

The nodes are logged into as root here; test_attach_sudo.py logs in as a non-root user through `sudo -n`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labyrinth_tui.cloud.bootstrap.inventory import parse_inventory
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.model.topology import Topology
from labyrinth_tui.sources.base import SourceEvent
from labyrinth_tui.sources.cluster import ClusterSource
from tests.conftest import IS_ROOT
from tests.fakes.kube_api import KubeApiStub
from tests.fakes.kube_lab import LabCluster
from tests.integration.conftest import (
    handshake_path,
    journey_cli,
    labyrinth,
    overlay_path,
    unique_prefix,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[str, dict[str, Any], str]]:
    """A lab with one extra pod per node; its status and its inventory, as the CLI gives them."""
    if not IS_ROOT:
        pytest.skip("NEEDS ROOT: the lab builds network namespaces. CI runs as root; run `sudo make test`.")
    prefix = unique_prefix("jz")
    try:
        labyrinth("lab", "up", "--prefix", prefix, "--pods-per-node", "1")
        status = json.loads(labyrinth("lab", "status", "--json", "--prefix", prefix).stdout)
        inventory = labyrinth("lab", "inventory", "--prefix", prefix).stdout
        yield prefix, status, inventory
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@pytest.fixture
async def attached(
    lab: tuple[str, dict[str, Any], str], tmp_path: Path
) -> AsyncIterator[tuple[ClusterSource, KubeApiStub]]:
    _, status, inventory = lab
    async with KubeApiStub(tmp_path / "pki", model=LabCluster(status)) as api:
        kubeconfig = tmp_path / "admin.conf"
        kubeconfig.write_text(yaml.safe_dump(api.admin_conf()))
        source = ClusterSource(kubeconfig, inventory=parse_inventory(inventory, "lab inventory"))
        try:
            await source.start(lambda event: None)
            yield source, api
        finally:
            await source.close()


def _named_by_discovery(topology: Topology) -> set[tuple[str, str]]:
    return {(n.name, i.name) for n in topology.nodes for i in n.interfaces}


def test_the_lab_inventory_reaches_each_node_inside_its_netns(lab: tuple[str, dict[str, Any], str]) -> None:
    _, status, text = lab
    inventory = yaml.safe_load(text)
    assert [(n["name"], n["netns"], n["address"]) for n in inventory["nodes"]] == [
        (n["name"], n["netns"], n["address"]) for n in status["nodes"]
    ]
    assert inventory["nodes"][0]["role"] == "control-plane"
    known = Path(inventory["known_hosts"]).read_text().splitlines()
    assert known == [f"{n['address']} {n['ssh']['host_key']}" for n in status["nodes"]]


async def test_the_article_pair_gives_the_lab_journeys_six_hops(
    attached: tuple[ClusterSource, KubeApiStub], lab: tuple[str, dict[str, Any], str]
) -> None:
    source, api = attached
    topology = source.topology
    assert topology is not None and all(n.reachable for n in topology.nodes)
    events: list[SourceEvent] = []
    report = (await source.journey(events.append)).jsonable()
    client, server = report["client"], report["server"]
    pods = {f"{p['namespace']}/{p['name']}": p for p in lab[1]["pods"]}
    assert client["host_veth"] == pods[f"wrk-1/{client['name']}"]["host_veth"]
    assert server["host_veth"] == pods[f"wrk-2/{server['name']}"]["host_veth"]
    six = overlay_path("node-1", client["host_veth"], "node-2", server["host_veth"])
    assert handshake_path(report, "syn") == six
    assert handshake_path(report, "syn_ack") == six[::-1]
    assert handshake_path(report, "ack") == six
    syn = report["handshake"]["syn"]["hops"]
    assert [h["dst"] for h in syn] == ["10.105.134.33:9999"] + ["10.0.2.215:9999"] * 5
    assert syn[1]["changes"] == ["DNAT 10.105.134.33:9999 → 10.0.2.215:9999"]
    assert report["dns"]["answer"] == "10.105.134.33"
    assert report["received"] == "asdfasdfasdfasd\n"
    assert all(s["state"] == "capturing" and s["packets"] > 0 for s in report["streams"])
    # nothing in the journey names an interface discovery did not find
    assert set(six) <= _named_by_discovery(topology)
    # the traffic went through the API's exec, in the pods the API named, with the first tool found
    probes, traffic = api.execs[:2], api.execs[2:]
    assert sorted((ns, argv) for ns, _, argv in probes) == [
        ("wrk-1", ["ncat", "--version"]),
        ("wrk-2", ["ncat", "--version"]),
    ]
    assert [(ns, argv) for ns, _, argv in traffic] == [
        ("wrk-2", ["ncat", "-v", "-l", "0.0.0.0", "9999"]),
        ("wrk-1", ["ncat", "node-wrk-2-ubuntu24.wrk-2", "9999"]),
    ]


async def test_an_extra_pod_to_the_other_service_crosses_the_other_way(
    attached: tuple[ClusterSource, KubeApiStub],
) -> None:
    source, _ = attached
    topology = source.topology
    assert topology is not None
    extra = next(p for p in topology.node("node-2").pods if p.namespace == "scale")  # type: ignore[union-attr]
    request = JourneyRequest.parse(extra.qualified_name, "node-wrk-1-ubuntu24.wrk-1:9999", "tcp", "hello lab")
    report = (await source.journey(lambda event: None, request)).jsonable()
    client, server = report["client"], report["server"]
    assert (client["name"], client["ip"]) == (extra.name, extra.ip)
    assert (server["namespace"], server["node"]) == ("wrk-1", "node-1")
    hops = overlay_path("node-2", extra.host_veth, "node-1", server["host_veth"])
    assert handshake_path(report, "syn") == hops
    assert handshake_path(report, "syn_ack") == hops[::-1]
    syn = report["handshake"]["syn"]["hops"]
    assert [h["src"].split(":")[0] for h in syn] == [extra.ip] * 6
    assert [h["dst"] for h in syn] == ["10.98.41.127:9999"] + ["10.0.1.15:9999"] * 5
    assert report["handshake"]["complete"] is True
    assert report["received"] == "hello lab\n"
    assert set(hops) <= _named_by_discovery(topology)


async def test_labyrinth_journey_on_the_attached_lab_gives_the_six_hops(
    lab: tuple[str, dict[str, Any], str], tmp_path: Path
) -> None:
    """The issue's "done when", by the command a person types (the stub API runs in this test)."""
    _, status, inventory = lab
    client = next(p for p in status["pods"] if p["namespace"] == "wrk-1")
    server = next(p for p in status["pods"] if p["namespace"] == "wrk-2")
    rc, out, err = await journey_cli(tmp_path, status, inventory)
    assert rc == 0, err
    report = json.loads(out)
    assert handshake_path(report, "syn") == overlay_path(
        "node-1", client["host_veth"], "node-2", server["host_veth"]
    )
    assert "✓ cluster  api" in err and "✓ cluster  discover" in err


@pytest.mark.parametrize(("dial", "listen"), [("bash", "python3"), ("python3", "nc")])
async def test_bash_and_python3_carry_the_payload_for_real(
    lab: tuple[str, dict[str, Any], str], tmp_path: Path, dial: str, listen: str
) -> None:
    """The argv each tool runs, in the lab's pods: what the client sends reaches the server's stdout."""
    from labyrinth_tui.cloud.kube.client import KubeClient
    from labyrinth_tui.cloud.kube.exec import journey_exchange
    from labyrinth_tui.cloud.kube.pod_tools import PodTool

    _, status, _ = lab
    client = next(p for p in status["pods"] if p["namespace"] == "wrk-1")
    server = next(p for p in status["pods"] if p["namespace"] == "wrk-2")
    async with KubeApiStub(tmp_path / "pki", model=LabCluster(status)) as api:
        (tmp_path / "certs").mkdir(mode=0o700)
        kube = KubeClient.from_config(api.admin_conf(), temp_dir=tmp_path / "certs")
        try:
            received, which = await journey_exchange(
                kube,
                [("wrk-2", server["name"])],
                ("wrk-1", client["name"]),
                target="node-wrk-2-ubuntu24.wrk-2",
                port=9999,
                payload=f"from {dial} to {listen}",
                timeout=15,
                server_argv=[PodTool(listen).server(9999)],
                client_argv=PodTool(dial).client("node-wrk-2-ubuntu24.wrk-2", 9999),
            )
        finally:
            kube.close()
    assert (received, which) == (f"from {dial} to {listen}\n", 0)


async def test_a_service_whose_backend_already_listens_gets_no_server_of_ours(
    attached: tuple[ClusterSource, KubeApiStub], lab: tuple[str, dict[str, Any], str]
) -> None:
    """An application on the backend (here ncat -k, inside the lab's wrk-1 pod) answers the client."""
    source, api = attached
    backend = next(p for p in lab[1]["pods"] if p["namespace"] == "wrk-1")
    app = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", backend["netns"], "ncat", "-k", "-l", "0.0.0.0", "9999",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        probe = ["ip", "netns", "exec", backend["netns"], "ss", "-H", "-l", "-t", "sport = :9999"]
        while True:  # wait until the application listens
            ss = await asyncio.create_subprocess_exec(*probe, stdout=asyncio.subprocess.PIPE)
            if (await ss.communicate())[0].strip():
                break
        extra = next(p for p in lab[1]["pods"] if p["name"] == "extra-node-2-000")
        request = JourneyRequest.parse(
            f"scale/{extra['name']}", "node-wrk-1-ubuntu24.wrk-1:9999", "tcp", None
        )
        api.execs.clear()
        report = await source.journey(lambda event: None, request)
    finally:
        app.kill()  # ours, by its PID
        await app.wait()
    listens = [argv for _, _, argv in api.execs if "-l" in argv]
    assert listens == []  # no server started
    assert report.handshake is not None and report.handshake.complete
    assert any(
        p.startswith("a backend already listens on 9999: no server was started") for p in report.problems
    )


async def test_j_on_a_pod_and_u_in_the_tui_on_the_attached_lab(
    lab: tuple[str, dict[str, Any], str], tmp_path: Path
) -> None:
    """As a person drives it: the tree's cursor on the extra pod of node-2, `j`, the client's pod completed
    as the target, enter: the journey's six hops the other way; then `u`: the tour on the cluster."""
    from textual.widgets import Input

    from labyrinth_tui.ui.app import make_app
    from labyrinth_tui.ui.screens.journey import JourneyScreen, TourScreen
    from labyrinth_tui.ui.screens.journey_target import JourneyTargetScreen
    from tests.unit.test_journey_target import on_pod

    _, status, inventory = lab
    client = next(p for p in status["pods"] if p["namespace"] == "wrk-1")
    extra = next(p for p in status["pods"] if p["name"] == "extra-node-2-000")
    async with KubeApiStub(tmp_path / "pki", model=LabCluster(status)) as api:
        kubeconfig = tmp_path / "admin.conf"
        kubeconfig.write_text(yaml.safe_dump(api.admin_conf()))
        app = make_app(ClusterSource(kubeconfig, inventory=parse_inventory(inventory, "lab inventory")))
        async with app.run_test(size=(120, 40)) as pilot:
            await on_pod(app, pilot, extra["name"])
            await pilot.press("j", *"wrk-1/", "right")
            assert isinstance(app.screen, JourneyTargetScreen)
            assert app.screen.query_one(Input).value == f"wrk-1/{client['name']}:9999"
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert isinstance(app.screen, JourneyScreen), [n.message for n in app._notifications]
            report = app.screen.report.jsonable()
            await pilot.press("escape", "home", "u")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert isinstance(app.screen, TourScreen)
            summary = app.screen.query_one("#tour-summary").render()
            failed = [(s.title, s.seen) for s in app.screen.steps if not s.passed]
    assert handshake_path(report, "syn") == overlay_path(
        "node-2", extra["host_veth"], "node-1", client["host_veth"]
    )
    assert report["received"] == "asdfasdfasdfasd\n"
    # the lab's default datapath translates the service in eBPF, so kube-proxy's rules count nothing; seen
    # from a node over SSH (not the lab's own reader), Debian's bpftool 7.1 cannot place a tcx link on a
    # device, so the eBPF step cannot be proven there and the tour says why instead of guessing
    assert [title for title, _ in failed] == ["kube-proxy's iptables counters on node-1 moved"]
    assert failed[0][1].startswith("no rule of the service counted anything")
    assert "bpftool cannot name the device" in failed[0][1]
    assert str(summary).strip() == "6/7 steps passed"
