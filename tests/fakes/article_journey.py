"""A deterministic JourneyReport of the article's run: journey_article's synthetic hops, real evidence."""

from __future__ import annotations

from labyrinth_tui.journey.report import JourneyReport, PodSeen, StreamReady
from labyrinth_tui.journey.stitch import stitch
from labyrinth_tui.model.bpf import BpfLink, NodeBpf
from labyrinth_tui.model.evidence import NodeEvidence, diff_evidence
from labyrinth_tui.model.topology import Pod
from labyrinth_tui.probes.evidence import parse_iptables_save
from tests.fakes import DATA
from tests.fakes import article as cluster
from tests.fakes import journey_article as art


def article_report(
    *,
    skew: float = 0.0025,
    drop_syn_after: int | None = None,
    counters: bool = True,
    veth_present: bool = True,
    ebpf: bool = False,
    without: str = "",
    kube_moved: bool = False,
) -> JourneyReport:
    """The article's connection as the lab would report it; node-2's clock `skew` s ahead.

    drop_syn_after: the SYN is lost after that many of its six hops (and no SYN-ACK comes back).
    counters: False → node-1's iptables did not count anything (before == after).
    ebpf: the eBPF datapath translated it (kube-proxy's counters stay put, the programs count);
    without: a device left without its program in that case; kube_moved: kube-proxy counted it too.
    """
    cap = art.Capture(skew={cluster.NODE2: skew})
    if drop_syn_after is None:
        art.article_connection(cap, 100.0)
    else:
        cport, isn = 38430, 1_000_000
        cap.send(100.0, art.dns(cport + 1000, 0x262F, "A", art.WALK[0]))
        cap.send(100.001, art.dns(cport + 1000, 0x262F, "A", art.WALK[0], nxdomain=True, response=True))
        cap.send(100.002, art.dns(cport + 1000, 0xF132, "A", art.WALK[1]))
        reply = art.dns(cport + 1000, 0xF132, "A", art.WALK[1], answer=cluster.CLUSTER_IP, response=True)
        cap.send(100.003, reply)
        cap.send(100.09, art.tcp(cport, cluster.SERVICE_PORT, "SYN", isn, 0, 0), drop_after=drop_syn_after)
    stitched = stitch(
        cap.observations, cluster.SERVICES, art.ROLES, captured=art.CAPTURED, reference_node=cluster.NODE1
    )
    before = parse_iptables_save((DATA / "iptables_save_nat_before.txt").read_text())
    after = parse_iptables_save((DATA / "iptables_save_nat_after.txt").read_text()) if counters else before
    if ebpf:
        evidence = tuple(
            diff_evidence(
                NodeEvidence(node, before, (), (), datapath(node, veth, 0, without)),
                NodeEvidence(node, after if kube_moved else before, (), (), datapath(node, veth, 1, without)),
            )
            for node, veth in ((cluster.NODE1, cluster.CLIENT_VETH), (cluster.NODE2, cluster.SERVER_VETH))
        )
    else:
        evidence = (
            diff_evidence(NodeEvidence(cluster.NODE1, before, ()), NodeEvidence(cluster.NODE1, after, ())),
            diff_evidence(NodeEvidence(cluster.NODE2, before, ()), NodeEvidence(cluster.NODE2, before, ())),
        )
    counts: dict[tuple[str, str], int] = {}
    for p in cap.observations:
        counts[(p.node, p.interface)] = counts.get((p.node, p.interface), 0) + 1
    return JourneyReport(
        cluster=cluster.CLUSTER,
        service=cluster.SERVICE_NAME,
        service_ip=cluster.CLUSTER_IP,
        service_port=cluster.SERVICE_PORT,
        client=_seen(cluster.CLIENT_POD, cluster.NODE1, veth_present, "client"),
        server=_seen(cluster.SERVER_POD, cluster.NODE2, True, "server"),
        streams=tuple(StreamReady(n, i, "capturing", "", counts.get((n, i), 0)) for n, i in art.CAPTURED),
        stitched=stitched,
        evidence=evidence,
        received="asdfasdfasdfasd\n" if drop_syn_after is None else "",
    )  # fmt: skip


def _seen(pod: Pod, node: str, veth_present: bool, role: str) -> PodSeen:
    return PodSeen(pod.namespace, pod.name, node, pod.ip, pod.netns, pod.host_veth or "", veth_present, role)


def datapath(node: str, lxc: str, run: int, without: str = "") -> NodeBpf:
    """A node's tcx links as the lab reads them, after `run` journeys: the client's lxc translates 9 a run."""
    devices = [
        ("cilium_vxlan", 5, "tcx_ingress", "cil_from_overlay"),
        ("cilium_vxlan", 5, "tcx_egress", "cil_to_overlay"),
        ("cilium_host", 4, "tcx_ingress", "cil_to_host"),
        ("cilium_host", 4, "tcx_egress", "cil_from_host"),
        ("cilium_net", 3, "tcx_ingress", "cil_to_host"),
        ("ens4", 2, "tcx_ingress", "cil_from_netdev"),
        (lxc, cluster.HOST_VETH_IFINDEX, "tcx_ingress", "cil_from_container"),
        ("lxc_health", cluster.HOST_VETH_IFINDEX + 1, "tcx_ingress", "cil_from_container"),
    ]
    translating = node == cluster.NODE1
    links = tuple(
        BpfLink(
            "tcx", 100 + i, 500 + i, name, ifindex, ifname, attach, 12 * run,
            9 * run if translating and ifname in (lxc, "cilium_vxlan") and attach == "tcx_ingress" else 0,
        )
        for i, (ifname, ifindex, attach, name) in enumerate(devices)
        if ifname != without
    )  # fmt: skip
    return NodeBpf(node, "tcx", links)
