"""Deterministic bundles for the snapshots: the shipped article recording, and variants of it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.sources.base import StreamSpec
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE, Bundle, read_packets
from labyrinth_tui.sources.bundle_writer import write_bundle

# tshark's (dumpcap's) own words for the filter "port eighty", kept as text so the snapshot does not depend
# on the installed version; tests/unit/test_capture_argv.py checks that today's dumpcap still says them
INVALID_FILTER = "That string isn't a valid capture filter (unknown port 'eighty')."


def article() -> Bundle:
    return Bundle.load(ARTICLE_BUNDLE)


def variant(root: Path, *, unreachable: str | None = None, in_progress: bool = False) -> Path:
    """The article's recording with node `unreachable` down, or caught halfway through provisioning."""
    bundle = article()
    topology = bundle.topology
    if unreachable is not None:
        nodes = tuple(
            replace(
                n,
                reachable=False,
                error="10.168.0.2:22 in netns labyrinth.node-0: connection refused",
                interfaces=(),
                pods=(),
            )
            if n.name == unreachable
            else n
            for n in topology.nodes
        )
        topology = replace(topology, nodes=nodes)
    steps = [
        Step(s["group"], s["name"], StepState(s["state"]), s["done"], s["total"], s["elapsed"], s["log"])
        for s in bundle.steps
    ]
    if in_progress:
        steps = [
            *steps[:3],
            Step("node-2", "dns", StepState.RUNNING, 0, 1, 0.4, "dnsmasq as CoreDNS on 10.0.2.17"),
            Step("node-0", "sshd", StepState.PENDING),
            Step(
                "node-1", "sshd", StepState.FAILED, 0, 1, 1.2, "10.168.0.4:22: nothing listening after 5.0s"
            ),
        ]
    streams = {
        s.spec: list(read_packets(s.packets_file)) for s in bundle.streams if s.packets_file is not None
    }
    failures = {StreamSpec("node-1", "ens4", "port eighty"): INVALID_FILTER}
    return write_bundle(root, topology, streams, steps=steps, failures=failures, title=bundle.title)
