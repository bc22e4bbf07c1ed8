"""A recorded bundle of 100k and of 500k packets (the article's 6 streams), replayed and stitched: time
per packet must stay flat (500k within 1.3x of 100k: linear, not worse) and memory must grow by a fixed
amount per packet. The anchor, measured in the same run on the same files, is the least any reader does:
json.loads of every line into a dict, all kept (as the stitcher keeps every packet in its journeys).

Each size runs in a child process of its own, so its RSS is its own:
    python bench/bundle_scale.py              # 100k and 500k
    python bench/bundle_scale.py --sizes 20000 100000
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from journey_stitch import ROLES, SERVICES, generate  # the 1M-observation bench's article traffic

from labyrinth_tui.journey.stitch import stitch
from labyrinth_tui.model.serialize import packet_to_json
from labyrinth_tui.sources.bundle import Bundle, read_packets

GOAL_RATIO = 1.3  # per-packet time at the largest size over the smallest
SIZES = (100_000, 500_000)


def rss_mb() -> float:
    """This process's resident set now (not the peak: what it holds)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def write_bundle(root: Path, n: int) -> None:
    """bundle.json + topology.json + one packets file per stream, as `labyrinth record` writes them."""
    per_stream: dict[tuple[str, str], list[Any]] = {}
    for p in generate(n):
        per_stream.setdefault((p.node, p.interface), []).append(p)
    streams = []
    (root / "streams").mkdir(parents=True)
    for i, ((node, iface), packets) in enumerate(per_stream.items()):
        name = f"streams/{i}-{node}-{iface}.jsonl"
        with (root / name).open("w") as f:
            for p in packets:
                f.write(json.dumps(packet_to_json(p), separators=(",", ":")) + "\n")
        streams.append({"node": node, "interface": iface, "filter": "", "packets": name})
    (root / "topology.json").write_text(json.dumps({"cluster": "bench", "nodes": [], "services": []}))
    meta = {
        "format": 1,
        "title": f"{n} packets",
        "topology": "topology.json",
        "steps": [],
        "streams": streams,
    }
    (root / "bundle.json").write_text(json.dumps(meta))


def child(root: Path, what: str) -> dict[str, float]:
    """One measurement in this (fresh) process: seconds and MB of RSS added."""
    bundle = Bundle.load(root)
    files = [s.packets_file for s in bundle.streams if s.packets_file is not None]
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    if what == "anchor":
        kept = []
        for path in files:
            with path.open("rb") as f:
                kept.extend(json.loads(line) for line in f)
        count = len(kept)
    elif what == "replay":  # what ReplaySource and `replay --json` do: stream, keep nothing
        count = sum(1 for _ in itertools.chain.from_iterable(read_packets(p) for p in files))
    else:  # what `journey --bundle` does: the streams read straight into the stitcher
        result = stitch(itertools.chain.from_iterable(read_packets(p) for p in files), SERVICES, ROLES)
        count = result.observations
    seconds = time.perf_counter() - start
    return {"n": count, "seconds": seconds, "rss_mb": rss_mb() - before}


def measure(root: Path, what: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(root), what], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--child", nargs=2, metavar=("BUNDLE", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1])))
        return 0
    results: dict[str, dict[int, dict[str, float]]] = {"anchor": {}, "replay": {}, "stitch": {}}
    with tempfile.TemporaryDirectory(prefix="labyrinth-bench-") as tmp:
        for n in args.sizes:
            root = Path(tmp) / str(n)
            write_bundle(root, n)
            size = sum(f.stat().st_size for f in root.rglob("*.jsonl")) / 1e6
            print(f"bundle of {n:,} packets: {size:.0f} MB of JSON lines")
            for what in results:
                results[what][n] = r = measure(root, what)
                print(
                    f"  {what:<7} {r['seconds']:6.2f} s  {r['seconds'] / r['n'] * 1e6:6.2f} µs/packet  "
                    f"RSS +{r['rss_mb']:6.1f} MB = {r['rss_mb'] * 1e6 / r['n']:5.0f} B/packet"
                )
    small, large = min(args.sizes), max(args.sizes)
    ok = True
    print(f"goal: µs/packet at {large:,} within {GOAL_RATIO}x of {small:,} (linear time); memory per packet")
    for what, by_size in results.items():
        a, b = by_size[small], by_size[large]
        ratio = (b["seconds"] / b["n"]) / (a["seconds"] / a["n"])
        met = ratio <= GOAL_RATIO
        ok &= met or what == "anchor"
        verdict = "(anchor)" if what == "anchor" else "MET" if met else "MISSED"
        print(
            f"  {what:<7} time ratio {ratio:4.2f}x {verdict:<8}"
            f"   RSS {a['rss_mb'] * 1e6 / a['n']:5.0f} → {b['rss_mb'] * 1e6 / b['n']:5.0f} B/packet"
        )
    replay_bytes = results["replay"][large]["rss_mb"] * 1e6 / results["replay"][large]["n"]
    bounded = replay_bytes < 50  # streaming keeps nothing per packet: a few MB of buffers in all
    ok &= bounded
    print(
        f"  replay keeps {replay_bytes:.0f} B/packet (goal < 50: streamed) {'MET' if bounded else 'MISSED'}"
    )
    stitch_b = results["stitch"][large]["rss_mb"] / results["stitch"][large]["n"]
    anchor_b = results["anchor"][large]["rss_mb"] / results["anchor"][large]["n"]
    lighter = stitch_b <= anchor_b
    ok &= lighter
    print(
        f"  stitch keeps {stitch_b * 1e6:.0f} B/packet, the anchor's dicts {anchor_b * 1e6:.0f} "
        f"(goal: no more) {'MET' if lighter else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
