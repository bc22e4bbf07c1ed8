"""A JourneyReport from a recorded bundle (e.g. the article's, recorded in the lab): no root, no lab."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from labyrinth_tui.journey.article import CLIENT_POD, PORT, SERVER_POD, SERVICE
from labyrinth_tui.journey.report import JourneyReport, PodSeen, StreamReady
from labyrinth_tui.journey.roles import roles_from_topology
from labyrinth_tui.journey.stitch import stitch
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.topology import Node, Pod, Topology
from labyrinth_tui.sources.base import JourneyError, StreamSpec
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE, Bundle, read_packets

NO_EVIDENCE = "a recording holds packets only: no iptables or BPF evidence was taken"


def _pod(topology: Topology, name: str, role: str) -> PodSeen:
    for node in topology.nodes:
        pod: Pod | None = next((p for p in node.pods if p.name.startswith(name + "-")), None)
        if pod is not None:
            return PodSeen(
                pod.namespace, pod.name, node.name, pod.ip, pod.netns, pod.host_veth or "",
                _has(node, pod.host_veth), role,
            )  # fmt: skip
    raise JourneyError(f"the recording has no pod {name!r}")


def _has(node: Node, interface: str | None) -> bool:
    return interface is not None and any(i.name == interface for i in node.interfaces)


def report_from_bundle(root: Path = ARTICLE_BUNDLE) -> JourneyReport:
    """The recorded streams stitched like a live run, with the evidence recorded beside them (older
    recordings have none, and say so)."""
    bundle = Bundle.load(root)
    topology = bundle.topology
    client, server = _pod(topology, CLIENT_POD, "client"), _pod(topology, SERVER_POD, "server")
    recorded = [s for s in bundle.streams if s.packets_file is not None]
    counts: Counter[StreamSpec] = Counter()

    def observations() -> Iterator[PacketSummary]:
        # streamed into the stitcher: no list of every packet beside the journeys that hold them
        for s in recorded:
            if s.packets_file is not None:
                for packet in read_packets(s.packets_file):
                    counts[s.spec] += 1
                    yield packet

    stitched = stitch(
        observations(),
        topology.services,
        roles_from_topology(topology),
        captured=[(s.spec.node, s.spec.interface) for s in recorded],
        reference_node=client.node,
    )
    service = next((s for s in topology.services if s.name == SERVER_POD), None)
    if service is None:
        raise JourneyError(f"the recording has no service {SERVER_POD!r}")
    return JourneyReport(
        cluster=f"{topology.cluster} (recorded)",
        service=SERVICE,
        service_ip=service.cluster_ip,
        service_port=PORT,
        client=client,
        server=server,
        streams=tuple(
            StreamReady(
                s.spec.node,
                s.spec.interface,
                "failed" if s.failed else "recorded",
                s.failed,
                counts[s.spec],
            )
            for s in bundle.streams
        ),
        stitched=stitched,
        evidence=bundle.evidence,
        received="",
        problems=() if bundle.evidence else (NO_EVIDENCE,),
    )
