"""Lab up/down as pods grow (the per-pod curve), 20 workers × 50 pods, beside Mininet at one host count.

Goals (issue 17): 3 nodes × 1000 pods up ≤ 15 s and down ≤ 5 s; time per pod flat from 100 to 1000
pods per node (the largest per-pod time ≤ 1.5 × the smallest: no pods² term); 20 workers × 50 pods up
≤ 15 s; seed up and down < 1 s; Mininet (`mn --topo single,N --switch lxbr --controller none --test
none`, run inside a network namespace of the bench's own so nothing reaches the root namespace) at
the 3 × 100 host count in the same run: ours ≤ 0.2 × its time. Mininet is skipped (said so, not a
pass) when `mn` is not installed or `--no-mininet` is given.
The labs are built with `--datapath iptables` by default: these goals are about building the lab
(namespaces, links, daemons). The eBPF datapath adds one tcx link per Cilium device and lxc, and each tcx
attach waits ~10 ms for an RCU grace period under the rtnl lock, one at a time machine-wide
(`bench/lab_ebpf.py` measures that floor) — about 40 s of attaches alone at 3 × 1000 pods.
`--datapath ebpf` runs the same curve with it.
Run as root: `.venv/bin/python bench/lab_scale.py [--prefix bzlab] [--datapath iptables|ebpf]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from lib.goals import Verdict, load_line

from labyrinth_tui.lab.down import down
from labyrinth_tui.lab.spec import LabSpec, article_spec
from labyrinth_tui.lab.up import up

CURVE = (0, 100, 300, 1000)  # extra pods per node
FLAT = 1.5  # the largest time per pod ÷ the smallest, from 100 to 1000 pods per node
MININET_HOSTS = 303


def timed_up_down(spec: LabSpec) -> tuple[float, float]:
    down(spec.prefix)
    start = time.perf_counter()
    up(spec)
    built = time.perf_counter() - start
    start = time.perf_counter()
    down(spec.prefix)
    return built, time.perf_counter() - start


def mininet_seconds(hosts: int, netns: str) -> float | None:
    """`mn` building `hosts` hosts on one Linux bridge, inside netns `netns` (made and removed here)
    and a private mount namespace: its bridge, veths and hosts never touch the root namespace."""
    if shutil.which("mn") is None:
        return None
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        argv = ["unshare", "-m", "ip", "netns", "exec", netns]
        argv += [
            "mn",
            "--topo",
            f"single,{hosts}",
            "--switch",
            "lxbr",
            "--controller",
            "none",
            "--test",
            "none",
        ]
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=1800)
        return time.perf_counter() - start
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--prefix", default="benchlab", help="the lab's prefix (unique on a shared machine)")
    args.add_argument("--no-mininet", action="store_true", help="skip the Mininet anchor")
    args.add_argument(
        "--datapath", choices=("iptables", "ebpf"), default="iptables", help="the labs' datapath"
    )
    opts = args.parse_args()
    if os.geteuid() != 0:
        print("bench/lab_scale.py needs root (it builds network namespaces)", file=sys.stderr)
        return 1
    print(f"{'lab':<26}{'pods':>6}{'up':>9}{'down':>8}{'up per pod':>13}")
    curve: dict[int, tuple[int, float, float]] = {}
    for per_node in CURVE:
        spec = article_spec(prefix=opts.prefix, pods_per_node=per_node, datapath=opts.datapath)
        built, removed = timed_up_down(spec)
        curve[per_node] = (len(spec.pods), built, removed)
        per_pod = built / len(spec.pods) * 1000
        label = f"3 nodes, {per_node} extra/node"
        print(f"{label:<26}{len(spec.pods):>6}{built:>8.2f}s{removed:>7.2f}s{per_pod:>10.2f} ms")
    wide = article_spec(prefix=opts.prefix, pods_per_node=50, workers=20, datapath=opts.datapath)
    wide_up, wide_down = timed_up_down(wide)
    print(f"{'21 nodes (20 workers), 50/node':<26}{len(wide.pods):>6}{wide_up:>8.2f}s{wide_down:>7.2f}s")
    mininet = None if opts.no_mininet else mininet_seconds(MININET_HOSTS, f"{opts.prefix}-mn")
    shown = "not run" if mininet is None else f"{mininet:.2f} s"
    print(f"Mininet single,{MININET_HOSTS} (lxbr, no controller): {shown}")
    print(load_line())

    verdict = Verdict("bench/lab_scale.py")
    seed = curve[0]
    verdict.goal("seed up", f"{seed[1]:.3f} s", "", "< 1 s", seed[1] < 1)
    verdict.goal("seed down", f"{seed[2]:.3f} s", "", "< 1 s", seed[2] < 1)
    big = curve[1000]
    verdict.goal("3 × 1000 pods up", f"{big[1]:.2f} s", "", "≤ 15 s", big[1] <= 15)
    verdict.goal("3 × 1000 pods down", f"{big[2]:.2f} s", "", "≤ 5 s", big[2] <= 5)
    per_pod = [curve[n][1] / curve[n][0] for n in CURVE[1:]]
    spread = max(per_pod) / min(per_pod)
    verdict.goal(
        "time per pod, 100 → 1000 per node", f"{spread:.2f} × spread", "", f"≤ {FLAT} ×", spread <= FLAT
    )
    verdict.goal("20 workers × 50 pods up", f"{wide_up:.2f} s", "", "≤ 15 s", wide_up <= 15)
    if mininet is None:
        print("Mininet anchor not run: `mn` is not installed (make setup) or --no-mininet")
    else:
        ours = curve[100][1]
        ratio = ours / mininet
        verdict.goal(
            f"3 × 100 pods up ÷ Mininet {MININET_HOSTS} hosts",
            f"{ours:.2f} s = {ratio:.2f} ×",
            f"{mininet:.2f} s",
            "≤ 0.2 ×",
            ratio <= 0.2,
        )
    return verdict.status()


if __name__ == "__main__":
    sys.exit(main())
