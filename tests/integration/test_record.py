"""`labyrinth record` on the real lab, then `labyrinth replay --json` of what it wrote, with no lab needed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import needs_root
from tests.integration.conftest import labyrinth, unique_prefix


@needs_root
def test_record_then_replay(tmp_path: Path) -> None:
    prefix = unique_prefix("r")
    out = tmp_path / "bundle"
    try:
        rec = labyrinth("record", str(out), "--prefix", prefix)
        assert "recorded" in rec.stdout
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)
    meta = json.loads((out / "bundle.json").read_text())
    hops = {
        (s["node"], s["interface"][:3] if s["interface"].startswith("lxc") else s["interface"])
        for s in meta["streams"]
    }
    assert hops == {(n, i) for n in ("node-1", "node-2") for i in ("lxc", "cilium_vxlan", "ens4")}
    for stream in meta["streams"]:
        check = subprocess.run(["tshark", "-r", str(out / stream["pcapng"])], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    lines = labyrinth("replay", str(out), "--json").stdout.splitlines()
    packets = [json.loads(line) for line in lines[1:]]
    assert json.loads(lines[0])["topology"]["cluster"] == f"lab {prefix}"
    syn_on_lxc = [
        p
        for p in packets
        if p["interface"].startswith("lxc") and p.get("tcp_flags") == "SYN" and p["node"] == "node-1"
    ]
    assert syn_on_lxc and syn_on_lxc[0]["dst"] == "10.105.134.33"
    assert any(
        p.get("vni") == 2 and p.get("outer_dport") == 8472 for p in packets if p["interface"] == "ens4"
    )
