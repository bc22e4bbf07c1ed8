"""The kube layer: the real kubernetes client against a stub API server (HTTPS, client certs) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import yaml

from labyrinth_tui.cloud.kube.client import KubeClient, load_kubeconfig
from labyrinth_tui.cloud.kube.errors import (
    KubeConfigError,
    KubeTimeout,
    KubeUnreachable,
    ManifestError,
    NamespaceMissing,
)
from labyrinth_tui.cloud.kube.exec import NC_MESSAGE, nc_exchange
from labyrinth_tui.cloud.kube.manifests import journey_manifests, parse_manifest
from labyrinth_tui.cloud.kube.workloads import deploy_journey
from labyrinth_tui.model.progress import Step, StepState
from tests.fakes.kube_api import KubeApiStub

FAST = {"timeout": 3.0}


def client(api: KubeApiStub, tmp_path: Path) -> KubeClient:
    (tmp_path / "certs").mkdir(mode=0o700, exist_ok=True)
    return KubeClient.from_config(api.admin_conf(), temp_dir=tmp_path / "certs")


async def test_the_journey_is_deployed_as_in_the_article(api: KubeApiStub, tmp_path: Path) -> None:
    kube = client(api, tmp_path)
    steps: list[Step] = []
    coredns_before = {p.name for p in await kube.pods("kube-system", label_selector="k8s-app=kube-dns")}
    pods = await deploy_journey(kube, steps.append, **FAST)

    assert [(s.name, s.state) for s in steps if s.state is not StepState.RUNNING] == [
        ("namespaces", StepState.DONE),
        ("apply 1.yaml", StepState.DONE),
        ("apply 2.yaml", StepState.DONE),
        ("pods running", StepState.DONE),
        ("restart coredns", StepState.DONE),
    ]
    assert steps[1].log == "namespace/wrk-1 created\nnamespace/wrk-2 created"
    assert steps[3].log == "service/node-wrk-1-ubuntu24 created\ndeployment/node-wrk-1-ubuntu24 created"
    assert (pods.client.namespace, pods.client.node, pods.client.ip) == ("wrk-1", "node-1", "10.0.1.15")
    assert (pods.server.namespace, pods.server.node, pods.server.ip) == ("wrk-2", "node-2", "10.0.2.215")

    # coredns restarted the way kubectl does it: a stamped template, new pods, Running again
    coredns = api.cluster.deployments[("kube-system", "coredns")]
    assert "kubectl.kubernetes.io/restartedAt" in coredns["spec"]["template"]["metadata"]["annotations"]
    coredns_after = await kube.pods("kube-system", label_selector="k8s-app=kube-dns")
    assert coredns_after and all(p.running for p in coredns_after)
    assert not coredns_before & {p.name for p in coredns_after}
    patches = [r for r in api.requests if r.method == "PATCH"]
    assert patches and all(r.content_type == "application/strategic-merge-patch+json" for r in patches)

    services = {(s.namespace, s.name): s for s in await kube.services()}
    svc = services[("wrk-2", "node-wrk-2-ubuntu24")]
    assert svc.cluster_ip == "10.105.134.33" and svc.endpoints == ("10.0.2.215",)
    assert [(p.name, p.protocol, p.port, p.target_port) for p in svc.ports] == [
        ("tcp-9999", "TCP", 9999, 9999),
        ("udp-9999", "UDP", 9999, 9999),
    ]
    dns = services[("kube-system", "kube-dns")]
    assert dns.cluster_ip == "10.96.0.10" and [p.target_port for p in dns.ports] == [53, 53, 9153]
    ips = await kube.pod_ips()
    assert ips["10.0.1.15"] == ("wrk-1", pods.client.name) and ips["10.0.2.215"] == (
        "wrk-2",
        pods.server.name,
    )
    assert "10.168.0.4" not in ips  # host-network pods (kube-proxy, cilium) have no netns of their own
    nodes = {n.name: n for n in await kube.nodes()}
    assert nodes["node-0"].roles == ("control-plane",) and nodes["node-2"].internal_ip == "10.168.0.5"
    kube.close()


async def test_applying_again_updates_instead_of_duplicating(api: KubeApiStub, tmp_path: Path) -> None:
    kube = client(api, tmp_path)
    await deploy_journey(kube, lambda step: None, **FAST)
    again = await kube.apply(journey_manifests(image="docker.io/library/ubuntu:24.04")[0])
    assert again == ["service/node-wrk-1-ubuntu24 configured", "deployment/node-wrk-1-ubuntu24 configured"]
    image = api.cluster.deployments[("wrk-1", "node-wrk-1-ubuntu24")]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert image["image"] == "docker.io/library/ubuntu:24.04"
    assert len([p for p in api.cluster.pods if p.namespace == "wrk-1"]) == 1


async def test_a_manifest_naming_a_missing_namespace_creates_nothing(
    api: KubeApiStub, tmp_path: Path
) -> None:
    kube = client(api, tmp_path)
    manifest = journey_manifests()[1]  # 2.yaml into wrk-2, which was never created
    with pytest.raises(NamespaceMissing) as info:
        await kube.apply(manifest)
    assert "2.yaml" in str(info.value) and "namespace 'wrk-2' does not exist" in str(info.value)
    assert "kubectl create namespace wrk-2" in str(info.value)
    assert not [r for r in api.requests if r.method == "POST"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Service\nmetadata: [unclosed", "not valid YAML at line 2"),
        ("- just\n- a list\n", "document 1 is a list, not a Kubernetes object"),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n", "v1/Secret is not one of"),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\n",
            "'Bad_Name' is not a valid Kubernetes",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: wrk-9}\n",
            "says namespace 'wrk-9' but is applied into 'wrk-1'",
        ),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n", "has no spec.template"),
        ("---\n---\n", "holds no Kubernetes object"),
    ],
)
def test_a_bad_manifest_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "my.yaml", "wrk-1")
    assert str(info.value).startswith("my.yaml: ") and message in str(info.value)


def test_the_shipped_manifests_are_the_articles() -> None:
    one, two = journey_manifests()
    assert (one.namespace, two.namespace) == ("wrk-1", "wrk-2")
    assert one.names() == ["service/node-wrk-1-ubuntu24", "deployment/node-wrk-1-ubuntu24"]
    service, deployment = two.objects
    assert [p["name"] for p in service["spec"]["ports"]] == ["tcp-9999", "udp-9999"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nodelabel": "node-wrk-2"}
    assert pod["containers"][0]["image"] == "docker.io/seantywork/ubuntu24"
    with pytest.raises(ManifestError, match="is not an image reference"):
        journey_manifests(image="ubuntu 24")


async def test_unlabelled_nodes_leave_the_pods_pending_with_the_schedulers_reason(tmp_path: Path) -> None:
    async with KubeApiStub(tmp_path / "pki", labelled=False) as api:
        kube = client(api, tmp_path)
        with pytest.raises(KubeTimeout) as info:
            await deploy_journey(kube, lambda step: None, timeout=0.6)
    assert "not Running after 0.6 s" in str(info.value)
    assert "didn't match Pod's node affinity/selector" in str(info.value)


async def test_the_nc_server_in_wrk2_receives_what_the_client_in_wrk1_sends(
    api: KubeApiStub, tmp_path: Path
) -> None:
    kube = client(api, tmp_path)
    pods = await deploy_journey(kube, lambda step: None, **FAST)
    server, client_pod = (pods.server.namespace, pods.server.name), (pods.client.namespace, pods.client.name)
    exchange = await nc_exchange(kube, server, client_pod, timeout=5)
    assert exchange.delivered and exchange.received == NC_MESSAGE + "\n" and exchange.client_exit == 0
    assert api.execs == [
        ("wrk-2", pods.server.name, ["nc", "-v", "-l", "0.0.0.0", "9999"]),
        ("wrk-1", pods.client.name, ["nc", "node-wrk-2-ubuntu24.wrk-2", "9999"]),
    ]


async def test_nc_over_the_older_v4_exec_protocol(tmp_path: Path) -> None:
    async with KubeApiStub(tmp_path / "pki", v5=False) as api:
        kube = client(api, tmp_path)
        pods = await deploy_journey(kube, lambda step: None, **FAST)
        exchange = await nc_exchange(
            kube,
            (pods.server.namespace, pods.server.name),
            (pods.client.namespace, pods.client.name),
            timeout=5,
        )
    assert exchange.delivered and exchange.client_exit is None  # v4 cannot end stdin alone: no exit status


async def test_nc_to_a_name_that_does_not_resolve_says_so(api: KubeApiStub, tmp_path: Path) -> None:
    from labyrinth_tui.cloud.kube.errors import ExecFailed

    kube = client(api, tmp_path)
    pods = await deploy_journey(kube, lambda step: None, **FAST)
    with pytest.raises(ExecFailed) as info:
        await nc_exchange(
            kube, ("wrk-2", pods.server.name), ("wrk-1", pods.client.name), target="nowhere.wrk-2", timeout=2
        )
    assert "ended before the server got the message (exit 2" in str(info.value)
    assert "Could not resolve hostname" in str(info.value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_no_api_server_is_a_clear_error(api: KubeApiStub, tmp_path: Path) -> None:
    kube = KubeClient.from_config(api.admin_conf(f"https://127.0.0.1:{free_port()}"), temp_dir=tmp_path)
    with pytest.raises(KubeUnreachable) as info:
        await kube.nodes()
    assert "list nodes" in str(info.value) and "127.0.0.1" in str(info.value)


async def test_a_certificate_without_127001_needs_the_servers_name(tmp_path: Path) -> None:
    async with KubeApiStub(tmp_path / "pki", loopback_san=False) as api:
        with pytest.raises(KubeUnreachable) as info:
            await KubeClient.from_config(api.admin_conf(), temp_dir=tmp_path).nodes()
        assert "certificate" in str(info.value).lower()
        named = KubeClient.from_config(
            api.admin_conf(), server=api.url, tls_server_name="kubernetes", temp_dir=tmp_path
        )
        assert [n.name for n in await named.nodes()] == ["node-0", "node-1", "node-2"]


def test_kubeconfig_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="does not exist"):
        load_kubeconfig(tmp_path / "nope")
    (tmp_path / "bad").write_text("just: text\n")
    with pytest.raises(KubeConfigError, match="has no contexts"):
        load_kubeconfig(tmp_path / "bad")
    config = {
        "contexts": [{"name": "a", "context": {"cluster": "c"}}],
        "clusters": [],
        "current-context": "a",
    }
    (tmp_path / "k").write_text(yaml.safe_dump(config))
    with pytest.raises(KubeConfigError, match=r"no context 'b' in the kubeconfig \(it has: a\)"):
        KubeClient.from_config(load_kubeconfig(tmp_path / "k"), context="b")
    with pytest.raises(KubeConfigError, match="names cluster 'c', which the kubeconfig lacks"):
        KubeClient.from_config(load_kubeconfig(tmp_path / "k"))


async def test_the_journey_exchange_listens_on_every_backend_and_says_which_read(
    api: KubeApiStub, tmp_path: Path
) -> None:
    from labyrinth_tui.cloud.kube.exec import journey_exchange

    kube = client(api, tmp_path)
    pods = await deploy_journey(kube, lambda step: None, **FAST)
    other = (pods.client.namespace, pods.client.name)  # listens too, is not the service's: reads nothing
    server = (pods.server.namespace, pods.server.name)
    received, which = await journey_exchange(
        kube,
        [other, server],
        other,
        target="node-wrk-2-ubuntu24.wrk-2",
        port=9999,
        payload="hello\n",
        timeout=5,
    )
    assert (received, which) == ("hello\n", 1)
    assert [argv for _, _, argv in api.execs] == [
        ["nc", "-v", "-l", "0.0.0.0", "9999"],
        ["nc", "-v", "-l", "0.0.0.0", "9999"],
        ["nc", "node-wrk-2-ubuntu24.wrk-2", "9999"],
    ]


async def test_the_image_is_asked_for_ncat_nc_bash_python3_in_that_order(tmp_path: Path) -> None:
    from labyrinth_tui.cloud.kube.pod_tools import detect_tool

    async with KubeApiStub(tmp_path / "pki", binaries={"bash", "python3"}) as api:
        kube = client(api, tmp_path)
        pods = await deploy_journey(kube, lambda step: None, **FAST)
        api.execs.clear()
        dial = await detect_tool(kube, pods.client.namespace, pods.client.name)
        listen = await detect_tool(kube, pods.server.namespace, pods.server.name, listen=True)
    assert (dial.name, listen.name) == ("bash", "python3")  # bash's /dev/tcp dials, but cannot listen
    assert [argv[0] for _, _, argv in api.execs] == ["ncat", "nc", "bash", "ncat", "nc", "python3"]
    assert dial.client("node-wrk-2-ubuntu24.wrk-2", 9999)[-3:] == ["tcp", "node-wrk-2-ubuntu24.wrk-2", "9999"]


async def test_an_image_with_none_of_them_says_what_was_tried(tmp_path: Path) -> None:
    from labyrinth_tui.cloud.kube.pod_tools import ToolMissing, detect_tool

    async with KubeApiStub(tmp_path / "pki", binaries=set()) as api:
        kube = client(api, tmp_path)
        pods = await deploy_journey(kube, lambda step: None, **FAST)
        with pytest.raises(ToolMissing) as caught:
            await detect_tool(kube, pods.client.namespace, pods.client.name)
    message = str(caught.value)
    assert message.startswith(f"wrk-1/{pods.client.name}: nothing in its image to dial with — tried ncat: ")
    for tool in ("ncat", "nc", "bash", "python3"):
        assert (
            f'{tool}: OCI runtime exec failed: exec failed: exec: "{tool}": executable file not found'
            in message
        )
    assert message.endswith("Use an image with ncat (nmap-ncat), nc, bash or python3.")


async def test_exec_forbidden_by_rbac_names_the_verb_the_resource_and_the_namespace(tmp_path: Path) -> None:
    from labyrinth_tui.cloud.kube.errors import ExecForbidden

    async with KubeApiStub(tmp_path / "pki", forbid_exec={"wrk-1"}) as api:
        kube = client(api, tmp_path)
        pods = await deploy_journey(kube, lambda step: None, **FAST)
        with pytest.raises(ExecForbidden) as caught:
            await nc_exchange(
                kube, (pods.server.namespace, pods.server.name), (pods.client.namespace, pods.client.name)
            )
    assert str(caught.value).startswith(
        f"exec forbidden: create on pods/exec in wrk-1 (pod {pods.client.name})"
    )
    assert 'cannot create resource "pods/exec"' in str(caught.value)


async def test_the_cilium_agents_service_map_is_read_with_the_older_cli_when_cilium_dbg_is_missing(
    tmp_path: Path,
) -> None:
    from labyrinth_tui.cloud.kube.cilium import service_maps
    from labyrinth_tui.journey.text import service_map_lines

    async with KubeApiStub(tmp_path / "pki", binaries={"nc", "cilium"}) as api:
        kube = client(api, tmp_path)
        pods = await deploy_journey(kube, lambda step: None, **FAST)
        maps = await service_maps(kube, ["node-1", "node-2", "node-1"], "10.105.134.33:9999")
        tried = [argv[0] for ns, _, argv in api.execs if ns == "kube-system"]
    assert [(m.node, m.agent, m.command) for m in maps] == [
        ("node-1", "kube-system/cilium-1x7q", "cilium bpf lb list"),
        ("node-2", "kube-system/cilium-2x7q", "cilium bpf lb list"),
    ]
    assert sorted(tried) == ["cilium", "cilium", "cilium-dbg", "cilium-dbg"]
    # the service and its one backend (the article's Service has 9999 for TCP and for UDP: two blocks)
    assert [line.split()[0] for line in maps[0].lines] == ["10.105.134.33:9999", "10.0.2.215:9999"] * 2
    assert "[ClusterIP, non-routable]" in maps[0].lines[0] and maps[0].lines[1].startswith(" " * 23)
    assert pods.server.name  # the backend above is the server pod deploy_journey made
    report_lines = service_map_lines(type("R", (), {"service_maps": maps})())  # type: ignore[arg-type]
    assert report_lines[1] == "Cilium service map on node-1 (kube-system/cilium-1x7q, cilium bpf lb list):"


async def test_a_cluster_without_cilium_has_no_service_map(tmp_path: Path) -> None:
    from labyrinth_tui.cloud.kube.cilium import service_maps

    async with KubeApiStub(tmp_path / "pki") as api:  # the agents' image has neither CLI
        kube = client(api, tmp_path)
        maps = await service_maps(kube, ["node-1"], "10.96.0.10:53")
    assert len(maps) == 1 and maps[0].lines == () and maps[0].command == ""
    assert maps[0].problem.startswith(
        'cilium-dbg bpf lb list: OCI runtime exec failed: exec failed: exec: "cilium-dbg"'
    )


async def test_an_api_call_while_an_exec_connects_is_answered_as_itself(tmp_path: Path) -> None:
    from labyrinth_tui.cloud.kube.cilium import AGENT_NAMESPACE, AGENT_SELECTOR
    from labyrinth_tui.cloud.kube.exec import PodExec

    async with KubeApiStub(tmp_path / "pki", binaries={"cilium-dbg"}) as api:
        kube = client(api, tmp_path)
        agents = await kube.pods(AGENT_NAMESPACE, label_selector=AGENT_SELECTOR)
        agent = agents[0]
        api.exec_gate = asyncio.Event()
        connecting = asyncio.create_task(
            PodExec.start(kube, AGENT_NAMESPACE, agent.name, ["cilium-dbg", "bpf", "lb", "list"], stdin=False)
        )
        await api.exec_arrived.wait()  # the exec's WebSocket handshake is under way in its thread
        try:
            async with asyncio.timeout(10):  # sent as a WebSocket handshake, it never came back
                listed = await kube.pods(AGENT_NAMESPACE, label_selector=AGENT_SELECTOR)
        finally:
            api.exec_gate.set()
        run = await connecting
        assert await run.wait(5.0) == 0
        await run.close()
        kube.close()
    assert listed == agents


def test_the_websocket_clients_whole_response_is_cut_to_its_status_line() -> None:
    from kubernetes.client.exceptions import ApiException

    from labyrinth_tui.cloud.kube.client import api_message

    reason = (
        "Handshake status 200 OK -+-+- {'content-type': 'application/json; charset=utf-8'} -+-+- "
        '{"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": []}'
    )
    assert api_message(ApiException(status=0, reason=reason)) == "Handshake status 200 OK"
