"""How fast the `labyrinth` command starts, beside `python -c pass` (the interpreter's own start) in one run.

Goals (issue 17): `labyrinth --version` ≤ 0.15 s; `labyrinth lab up` of the seed topology, end to end
(process start, imports, the build), ≤ 0.4 s (root only: it builds the lab, then `lab down` removes it).
The goal is the CLI's own cost, so it is timed on `--datapath iptables`; the default eBPF lab is timed
beside it for the record — its extra ~0.2–0.3 s is the kernel's tcx attach floor (bench/lab_ebpf.py).
Medians of `--runs` starts each, interleaved so both see the same machine.
Run: `.venv/bin/python bench/cli_start.py [--runs 7] [--prefix bzcli]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lib.goals import Verdict, load_line

LABYRINTH = str(Path(sys.executable).with_name("labyrinth"))
GOAL_VERSION, GOAL_LAB_UP = 0.15, 0.4


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--runs", type=int, default=7)
    args.add_argument("--prefix", default="benchcli", help="the lab's prefix (unique on a shared machine)")
    opts = args.parse_args()
    bare, version = [], []
    for _ in range(opts.runs):
        bare.append(seconds([sys.executable, "-c", "pass"]))
        version.append(seconds([LABYRINTH, "--version"]))
    verdict = Verdict("bench/cli_start.py")
    anchor = f"{statistics.median(bare):.3f} s (python -c pass)"
    mine = statistics.median(version)
    print(f"labyrinth --version  median {mine:.3f} s   anchor {anchor}")
    lab_up: list[float] = []
    ebpf_up: list[float] = []
    if os.geteuid() == 0:
        down = [LABYRINTH, "lab", "down", "--prefix", opts.prefix]
        for _ in range(max(1, opts.runs // 2)):
            lab_up.append(
                seconds([LABYRINTH, "lab", "up", "--prefix", opts.prefix, "--datapath", "iptables"])
            )
            subprocess.run(down, check=True, capture_output=True)
            ebpf_up.append(seconds([LABYRINTH, "lab", "up", "--prefix", opts.prefix]))
            subprocess.run(down, check=True, capture_output=True)
        print(f"labyrinth lab up --datapath iptables (seed)  median {statistics.median(lab_up):.3f} s")
        print(f"labyrinth lab up (seed, eBPF default)       median {statistics.median(ebpf_up):.3f} s")
    else:
        print("lab up not measured: it needs root")
    print(load_line())
    verdict.goal("labyrinth --version", f"{mine:.3f} s", anchor, f"≤ {GOAL_VERSION} s", mine <= GOAL_VERSION)
    if lab_up:
        up = statistics.median(lab_up)
        verdict.goal(
            "labyrinth lab up --datapath iptables (seed), end to end",
            f"{up:.3f} s",
            "",
            f"≤ {GOAL_LAB_UP} s",
            up <= GOAL_LAB_UP,
        )
    return verdict.status()


if __name__ == "__main__":
    sys.exit(main())
