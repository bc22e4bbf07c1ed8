"""Parallel provisioning: `up` against the local fake GCE with 2 s per create, vs one create at a time.

The anchor is the same API calls made one after another (what clicking through the console amounts to),
measured in the same run. GCE's dependencies are real — a subnet needs its network, an instance its
subnet — so when every create takes 2 s, `up` can at best take 3 creates' time (network → subnet →
instances), with the firewalls beside the subnet and the three instances side by side. The goal:
each dependency level costs ≤ 1.3 × its slowest single create, so the whole `up` ≤ 1.3 × (levels ×
slowest create); and with only the instances slow (the usual case on real GCE), `up` ≤ 1.3 × the
slowest single create. Exit status 1 when a goal is missed.

    python bench/provision_parallel.py [--latency 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from google.auth.credentials import AnonymousCredentials
from tests.fakes.gce_server import FakeGce

from labyrinth_tui.cloud.gcp.api import GceApi
from labyrinth_tui.cloud.gcp.cluster import GcpCluster
from labyrinth_tui.cloud.gcp.prices import load_prices
from labyrinth_tui.cloud.gcp.resources import body_for
from labyrinth_tui.cloud.gcp.spec import ClusterSpec
from labyrinth_tui.cloud.gcp.state import StateDir

GOAL = 1.3
LEVELS = 3  # network → subnet → instances


def _api(gce: FakeGce, spec: ClusterSpec) -> GceApi:
    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return GceApi(spec.project, spec.region, spec.zone, credentials=credentials, endpoint=gce.endpoint)


def sequential(spec: ClusterSpec, latency: dict[str, float], root: Path) -> tuple[float, float]:
    """Every create, one after another, each awaited: (total seconds, slowest single create)."""
    with FakeGce() as gce:
        gce.model.set_latency(**latency)
        api = _api(gce, spec)
        public_key = StateDir(spec.cluster, root).ensure_key(spec.ssh_user)
        times = []
        started = time.monotonic()
        for n, ref in enumerate(spec.refs()):
            t0 = time.monotonic()
            op = api.insert(ref, body_for(spec, ref, public_key), f"00000000-0000-4000-8000-{n:012d}")
            api.wait(op, ref.label)
            times.append(time.monotonic() - t0)
        return time.monotonic() - started, max(times)


def parallel(spec: ClusterSpec, latency: dict[str, float], root: Path) -> float:
    """`up` as the CLI runs it (plan included): seconds."""
    with FakeGce() as gce:
        gce.model.set_latency(**latency)
        cluster = GcpCluster(
            spec, _api(gce, spec), state_dir=StateDir(spec.cluster, root), prices=load_prices(root)
        )
        started = time.monotonic()
        try:
            asyncio.run(cluster.up())
        finally:
            cluster.close()
        took = time.monotonic() - started
        assert len(gce.model.names("instances")) == len(spec.nodes), "up did not create every node"
        return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds injected per create")
    args = parser.parse_args()
    spec = ClusterSpec(project="bench-project", ssh_source_ranges=("198.51.100.7/32",))
    creates = len(spec.refs())
    print(
        f"provision_parallel: {args.latency:g} s injected per create; fake GCE on 127.0.0.1, "
        "the real compute_v1 client"
    )
    ok = True
    scenarios = [
        (
            f"every create {args.latency:g} s ({creates} creates, {LEVELS} dependency levels)",
            {"create": args.latency},
            LEVELS,
        ),
        (f"instance creates {args.latency:g} s, the rest instant", {"instances": args.latency}, 1),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for n, (title, latency, levels) in enumerate(scenarios):
            root = Path(tmp) / str(n)
            total, slowest = sequential(spec, latency, root / "seq")
            ours = parallel(spec, latency, root / "up")
            floor = levels * slowest
            ratio = ours / floor
            ok &= ratio <= GOAL
            print(f"\n{title}")
            print(f"  one create at a time (anchor, sum): {total:6.2f} s")
            print(f"  slowest single create:              {slowest:6.2f} s")
            print(f"  labyrinth gcp up:                   {ours:6.2f} s")
            print(f"  ratio up / sequential sum:          {ours / total:6.2f}")
            what = "slowest single create" if levels == 1 else f"{levels} levels × slowest single create"
            print(f"  ratio up / {what}: {ratio:.2f}  (goal ≤ {GOAL}) {'ok' if ratio <= GOAL else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
