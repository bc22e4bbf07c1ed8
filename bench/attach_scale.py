"""A 21-node lab (20 workers × 20 extra pods each) attached as a cluster: topology + one journey, timed.

Goal (issue #14): attach (the API's nodes, pods and services, then discovery over SSH of every node) and
one journey between pods on two different workers ≤ 5 s. Ours goes through ClusterSource: the stub
Kubernetes API of the tests (tests/fakes/kube_lab.py: what the lab built, exec run for real in the pod's
netns) and `labyrinth lab inventory`'s SSH into each node's own sshd. Anchor, same run, same lab, same
pods: the lab's own journey (`labyrinth journey --prefix P` — discovery over SSH, then the journey, no
API). Each is run three times, taking turns at going first (the first journey on a new lab also pays
for tshark's first start from disk on the nodes); the medians are compared. Ours in its first run also
imports the Kubernetes client's models (~1-2 s of CPU, as a person's `labyrinth cluster attach` does):
that run is printed as it is.
Run as root: `.venv/bin/python bench/attach_scale.py [--prefix au]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fakes: the stub API

import yaml
from lib.goals import Verdict, load_line
from tests.fakes.kube_api import KubeApiStub
from tests.fakes.kube_lab import LabCluster

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.lab.down import down
from labyrinth_tui.lab.spec import article_spec
from labyrinth_tui.lab.state import LabState
from labyrinth_tui.lab.up import up
from labyrinth_tui.sources.cluster import ClusterSource
from labyrinth_tui.sources.journey_run import run_journey
from labyrinth_tui.sources.lab_nodes import lab_inventory

GOAL = 5.0  # s: attach + one journey, 21 nodes
RUNS = 3
WORKERS, PODS_PER_NODE = 20, 20
CLIENT, SERVER = "scale/extra-node-3-000", "scale/extra-node-17-000"  # two workers far apart


def _request() -> JourneyRequest:
    return JourneyRequest.parse(CLIENT, f"{SERVER}:9999", "tcp", "attach at scale")


def _check(report: JourneyReport, what: str) -> None:
    """A timed journey that did not really cross the cluster would be a meaningless figure."""
    hops = report.handshake.syn.hops if report.handshake is not None else ()
    if report.handshake is None or not report.handshake.complete or len(hops) != 6:
        raise SystemExit(f"{what}: the journey did not complete across six hops: {report.problems}")
    if report.received != "attach at scale\n":
        raise SystemExit(f"{what}: the server received {report.received!r}")


async def attached(state: LabState, work: Path) -> tuple[float, float, int]:
    """Ours: ClusterSource.start (API, discovery over SSH), then the journey: (attach s, journey s, nodes)."""
    async with KubeApiStub(work / "pki", model=LabCluster(state.to_json())) as api:
        (work / "admin.conf").write_text(yaml.safe_dump(api.admin_conf()))
        source = ClusterSource(work / "admin.conf", inventory=lab_inventory(state))
        try:
            start = time.perf_counter()
            await source.start(lambda event: None)
            attach = time.perf_counter() - start
            report = await source.journey(lambda event: None, _request())
            journey = time.perf_counter() - start - attach
            topology = source.topology
            reached = sum(n.reachable and not n.partial for n in topology.nodes) if topology else 0
        finally:
            await source.close()
    _check(report, "attached")
    return attach, journey, reached


async def lab_path(state: LabState) -> float:
    """The anchor: the lab's own journey, discovery included, as `labyrinth journey --prefix P` runs it."""
    start = time.perf_counter()
    report = await run_journey(state, _request())
    took = time.perf_counter() - start
    _check(report, "lab")
    return took


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--prefix", default="au", help="the lab's prefix (unique on a shared machine)")
    prefix = args.parse_args().prefix
    if os.geteuid() != 0:
        print("bench/attach_scale.py needs root (it builds the lab)", file=sys.stderr)
        return 1
    spec = article_spec(prefix=prefix, pods_per_node=PODS_PER_NODE, workers=WORKERS)
    down(prefix)
    started = time.perf_counter()
    state = up(spec)
    took = time.perf_counter() - started
    print(f"lab up: {len(state.nodes)} nodes, {len(state.pods)} pods in {took:.1f} s")
    ours: list[tuple[float, float, int]] = []
    anchor: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="labyrinth-bench-attach-") as work:
            for run in range(RUNS):
                if run % 2 == 0:
                    anchor.append(asyncio.run(lab_path(state)))
                ours.append(asyncio.run(attached(state, Path(work) / str(run))))
                if run % 2 == 1:
                    anchor.append(asyncio.run(lab_path(state)))
                (a, j, n), lab = ours[-1], anchor[-1]
                print(f"run {run + 1}: attached {a:.2f} s + journey {j:.2f} s = {a + j:.2f} s "
                      f"({n}/{len(state.nodes)} nodes discovered)   lab's own {lab:.2f} s")  # fmt: skip
    finally:
        down(prefix)
    print(load_line())
    median = statistics.median(a + j for a, j, _ in ours)
    nodes = min(n for _, _, n in ours)
    verdict = Verdict("bench/attach_scale.py")
    verdict.goal(
        f"{len(state.nodes)} nodes × {PODS_PER_NODE} pods: attach + journey",
        f"{median:.2f} s",
        f"{statistics.median(anchor):.2f} s (lab's own)",
        f"≤ {GOAL:g} s",
        median <= GOAL,
    )
    verdict.goal("nodes discovered", str(nodes), "", str(len(state.nodes)), nodes == len(state.nodes))
    return verdict.status()


if __name__ == "__main__":
    sys.exit(main())
