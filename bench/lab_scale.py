"""Lab up/down time (seed; 3 nodes × 100 pods) beside a process-per-command build of the same links.

Goal (issue 3): seed up < 1 s, down < 1 s; 3 × 100 pods up < 10 s.
Anchor: the same `ip` commands run one process each (how a shell script or a naive tool builds it).
Mininet is not run: its switches live in the root network namespace, which this project never touches.
Run as root: `.venv/bin/python bench/lab_scale.py`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from _goals import Verdict, load_line

from labyrinth_tui.lab import links
from labyrinth_tui.lab.build import down, up
from labyrinth_tui.lab.spec import LabSpec, article_spec


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def storm_build(spec: LabSpec) -> None:
    """The anchor: every link/route/addr line of our batches as its own `ip` process."""

    def one(argv: list[str]) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    for line in links.netns_batch(spec):
        one(["ip", *line.split()])
    for line in links.vpc_batch(spec):
        one(["ip", "-n", spec.vpc_netns, *line.split()])
    for node in spec.nodes:
        for line in links.node_batch(spec, node):
            one(["ip", "-n", spec.node_netns(node.name), *line.split()])
        for line in links.fdb_batch(spec, node):
            one(["bridge", "-n", spec.node_netns(node.name), *line.split()])
    for pod in spec.pods:
        for line in links.pod_batch(spec, pod):
            one(["ip", "-n", spec.pod_netns(pod), *line.split()])


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--prefix", default="benchlab", help="the lab's prefix (unique on a shared machine)")
    prefix = args.parse_args().prefix
    if os.geteuid() != 0:
        print("bench/lab_scale.py needs root (it builds network namespaces)", file=sys.stderr)
        return 1
    rows = []
    for label, per_node in (("seed (3 nodes, 3 pods)", 0), ("3 nodes × 100 pods", 100)):
        spec = article_spec(prefix=prefix, pods_per_node=per_node)
        down(spec.prefix)
        ours_up = timed(up, spec)
        ours_down = timed(down, spec.prefix)
        anchor_up = timed(storm_build, spec)  # links only: no sshd, DNS or iptables
        anchor_down = timed(down, spec.prefix)
        rows.append((label, ours_up, ours_down, anchor_up, anchor_down))
    head = f"{'topology':<24} {'ours up':>9} {'ours down':>10}"
    print(f"{head} {'1-proc/cmd up (links only)':>27} {'ratio':>7}")
    for label, o_up, o_down, a_up, _a_down in rows:
        print(f"{label:<24} {o_up:8.3f}s {o_down:9.3f}s {a_up:26.3f}s {a_up / o_up:6.1f}×")
    seed, scale = rows
    print(load_line())
    verdict = Verdict("bench/lab_scale.py")
    verdict.goal("seed up", f"{seed[1]:.3f} s", f"{seed[3]:.3f} s", "< 1 s", seed[1] < 1)
    verdict.goal("seed down", f"{seed[2]:.3f} s", "", "< 1 s", seed[2] < 1)
    verdict.goal("3 × 100 pods up", f"{scale[1]:.3f} s", f"{scale[3]:.3f} s", "< 10 s", scale[1] < 10)
    return verdict.status()


if __name__ == "__main__":
    sys.exit(main())
