"""A recording with one busy stream (the article's topology, node-1's client lxc at RATE pkt/s)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE

NODE, INTERFACE = "node-1", "lxc1ba60d50596c"


def write_busy_bundle(root: Path, rate: int = 5_000, seconds: float = 30.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ARTICLE_BUNDLE / "topology.json", root / "topology.json")
    (root / "streams").mkdir(exist_ok=True)
    t0 = 1_700_000_000.0
    with (root / "streams" / "busy.jsonl").open("w") as out:
        for i in range(int(rate * seconds)):
            packet = {
                "ts": t0 + i / rate,
                "node": NODE,
                "interface": INTERFACE,
                "number": i + 1,
                "src": "10.0.1.15",
                "dst": "10.0.2.215",
                "protocol": "TCP",
                "length": 74,
                "info": f"{38430 + i % 1000} → 9999 [ACK] Seq={i} Ack=1 Win=64512 Len=0",
                "sport": 38430 + i % 1000,
                "dport": 9999,
            }
            out.write(json.dumps(packet, separators=(",", ":")) + "\n")
    meta = {
        "format": 1,
        "title": f"{rate} pkt/s on {NODE}/{INTERFACE}",
        "topology": "topology.json",
        "steps": [],
        "streams": [{"node": NODE, "interface": INTERFACE, "packets": "streams/busy.jsonl"}],
    }
    (root / "bundle.json").write_text(json.dumps(meta))
    return root
