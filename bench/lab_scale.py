"""Lab up/down time (seed; 3 nodes × 100 pods) beside a process-per-command build of the same links.

Goal (issue 3): seed up < 1 s, down < 1 s; 3 × 100 pods up < 10 s.
Anchor: the same `ip` commands run one process each (how a shell script or a naive tool builds it).
Mininet is not run: its switches live in the root network namespace, which this project never touches.
Run as root: `.venv/bin/python bench/lab_scale.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

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
    if os.geteuid() != 0:
        print("bench/lab_scale.py needs root (it builds network namespaces)", file=sys.stderr)
        return 1
    rows = []
    for label, per_node in (("seed (3 nodes, 3 pods)", 0), ("3 nodes × 100 pods", 100)):
        spec = article_spec(prefix="benchlab", pods_per_node=per_node)
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
    print(
        f"goals: seed up {seed[1]:.3f}s < 1s {'✓' if seed[1] < 1 else '✗'}; "
        f"seed down {seed[2]:.3f}s < 1s {'✓' if seed[2] < 1 else '✗'}; "
        f"3×100 up {scale[1]:.3f}s < 10s {'✓' if scale[1] < 10 else '✗'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
