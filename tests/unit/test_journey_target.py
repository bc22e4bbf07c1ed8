"""`j` on a pod asks for the target (completed from the topology) and follows it through an attached
cluster (the stub Kubernetes API; no SSH, so the report says which hops it could not capture)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Input, Static

from labyrinth_tui.journey.request import target_choices
from labyrinth_tui.sources.cluster import ClusterSource
from labyrinth_tui.ui.app import LabyrinthApp, make_app
from labyrinth_tui.ui.screens.journey import JourneyScreen
from labyrinth_tui.ui.screens.journey_target import JourneyTargetScreen
from labyrinth_tui.ui.widgets.topology_tree import TopologyTree
from tests.fakes.kube_api import KubeApiStub
from tests.unit.test_cluster_source import journey, kubeconfig


async def on_pod(app: LabyrinthApp, pilot: Pilot[None], name: str) -> None:
    """The app up on its source, the tree's cursor on the pod `name`, as arrow keys would put it."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    tree = app.screen.query_one(TopologyTree)
    while (ref := tree.cursor_node.data if tree.cursor_node else None) is None or (
        ref.kind != "pod" or ref.pod is None or ref.pod.name != name
    ):
        before = tree.cursor_line
        await pilot.press("down")
        assert tree.cursor_line != before, f"no pod {name} in the tree"


def error_line(app: LabyrinthApp) -> str:
    rendered = app.screen.query_one("#target-error", Static).render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


async def test_j_on_a_pod_completes_the_service_and_follows_it_through_the_cluster(
    api: KubeApiStub, tmp_path: Path
) -> None:
    pods = await journey(api, tmp_path)
    source = ClusterSource(kubeconfig(api, tmp_path), discover=False)
    app = make_app(source)
    async with app.run_test(size=(100, 40)) as pilot:
        await on_pod(app, pilot, pods.client.name)
        await pilot.press("j")
        assert isinstance(app.screen, JourneyTargetScreen)
        assert "node-wrk-2-ubuntu24.wrk-2:9999" in app.screen.choices
        await pilot.press(*"node-wrk-2", "right")  # → takes the completion
        assert app.screen.query_one(Input).value == "node-wrk-2-ubuntu24.wrk-2:9999"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, JourneyScreen), [n.message for n in app._notifications]
        report = app.screen.report
    assert (report.client.name, report.server.name) == (pods.client.name, pods.server.name)
    # the pod under the cursor dialled the service typed, through the API's exec
    dialled = [
        (ns, pod, argv) for ns, pod, argv in api.execs if argv[-2:] == ["node-wrk-2-ubuntu24.wrk-2", "9999"]
    ]
    assert dialled == [("wrk-1", pods.client.name, ["nc", "node-wrk-2-ubuntu24.wrk-2", "9999"])]
    # no SSH to the nodes here: the report says what it could not capture, it does not invent hops
    assert not report.streams
    assert f"node-1: the route to {pods.server.ip} could not be determined (no session to the node)" in (
        report.problems
    )
    await source.close()  # the kubernetes client's key files go with it


async def test_a_bad_target_or_proto_is_said_in_one_line_and_the_modal_stays(
    api: KubeApiStub, tmp_path: Path
) -> None:
    pods = await journey(api, tmp_path)
    source = ClusterSource(kubeconfig(api, tmp_path), discover=False)
    app = make_app(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await on_pod(app, pilot, pods.client.name)
        await pilot.press("j", *"nowhere.wrk-2:9999", "enter")
        assert isinstance(app.screen, JourneyTargetScreen)
        assert error_line(app).startswith("no service 'nowhere.wrk-2'; services: kube-dns.kube-system")
        await pilot.press("ctrl+u", *"kube-dns.kube-system:9", "right", "ctrl+o", "enter")
        assert isinstance(app.screen, JourneyTargetScreen) and app.screen.proto == "udp"
        assert (
            error_line(app)
            == "service kube-dns.kube-system has no port 9153/udp (ports: 53/udp, 53/tcp, 9153/tcp)"
        )
        await pilot.press("ctrl+u", *f"wrk-2/{pods.server.name}", "enter")
        assert error_line(app) == f"wrk-2/{pods.server.name}: give the port (NAMESPACE/POD:PORT)"
        assert api.execs == []  # nothing ran while the target was wrong
        await pilot.press(
            "ctrl+u", *"node-wrk-2", "right", "enter"
        )  # udp: the article's service has 9999/udp
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, JourneyScreen), [n.message for n in app._notifications]
    dialled = [argv for ns, _, argv in api.execs if ns == "wrk-1" and "--version" not in argv]
    assert dialled == [["nc", "-u", "node-wrk-2-ubuntu24.wrk-2", "9999"]]
    await source.close()  # the kubernetes client's key files go with it


async def test_escape_cancels_and_j_off_a_pod_follows_the_articles_pair(
    api: KubeApiStub, tmp_path: Path
) -> None:
    pods = await journey(api, tmp_path)
    source = ClusterSource(kubeconfig(api, tmp_path), discover=False)
    app = make_app(source)
    async with app.run_test(size=(100, 40)) as pilot:
        await on_pod(app, pilot, pods.client.name)
        await pilot.press("j", "escape")
        await app.workers.wait_for_complete()
        assert not isinstance(app.screen, JourneyTargetScreen | JourneyScreen)
        assert api.execs == []  # nothing ran
        await pilot.press("home", "j")  # the cluster's line: no pod, the article's pair at once
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, JourneyScreen), [n.message for n in app._notifications]
        assert app.screen.report.service == "node-wrk-2-ubuntu24.wrk-2"
    await source.close()  # the kubernetes client's key files go with it


async def test_the_choices_are_the_services_ports_and_the_pods_they_send_to(
    api: KubeApiStub, tmp_path: Path
) -> None:
    pods = await journey(api, tmp_path)
    source = ClusterSource(kubeconfig(api, tmp_path), discover=False)
    try:
        await source.start(lambda event: None)
        assert source.topology is not None
        choices = target_choices(source.topology)
    finally:
        await source.close()
    assert choices[:4] == [
        "kube-dns.kube-system:53",
        "kube-dns.kube-system:9153",
        "node-wrk-1-ubuntu24.wrk-1:9999",
        "node-wrk-2-ubuntu24.wrk-2:9999",
    ]
    assert f"wrk-2/{pods.server.name}:9999" in choices and f"wrk-1/{pods.client.name}:9999" in choices
