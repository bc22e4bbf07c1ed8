"""`labyrinth journey --bundle` headless on the shipped recording (no root), and its clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from labyrinth_tui.cli import main
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE


def test_journey_of_the_recording_prints_the_syns_hops() -> None:
    out = CliRunner().invoke(main, ["journey", "--bundle", str(ARTICLE_BUNDLE)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    syn = next(i for i, line in enumerate(lines) if re.fullmatch(r"SYN: 6 hops, \d+µs", line))
    hops = [line for line in lines[syn + 1 : syn + 40] if not line.startswith("      evidence:")]
    assert "DNAT 10.105.134.33:9999 → 10.0.2.215:9999" in hops[1]
    assert re.search(r"encap VXLAN VNI 2 10\.168\.0\.4:\d+ → 10\.168\.0\.5:8472", hops[2])
    # recorded on the eBPF datapath, with its evidence: the program translated, kube-proxy stayed at 0
    dnat = lines[lines.index(hops[1]) + 1 : lines.index(hops[2])]
    assert dnat[:2] == [
        "      evidence: eBPF cil_from_container on node-1/lxc1ba60d50596c translated "
        "10.105.134.33:9999 → 10.0.2.215:9999 (+9 this run)",
        "      evidence: kube-proxy KUBE-SERVICES → KUBE-SVC-IWPXKGE4TAJJE4GD → KUBE-SEP-FXHI2MOU7V5XIHJD "
        "(DNAT): 0 packets — bypassed",
    ]
    assert not any(line.startswith("problem:") for line in lines)


def test_journey_json_of_the_recording() -> None:
    out = CliRunner().invoke(main, ["journey", "--json", "--bundle", str(ARTICLE_BUNDLE)])
    data = json.loads(out.output)
    assert data["handshake"]["complete"] is True
    assert [h["node"] for h in data["handshake"]["syn"]["hops"]] == ["node-1"] * 3 + ["node-2"] * 3
    assert data["dns"]["walk"][0] == "node-wrk-2-ubuntu24.wrk-2.wrk-1.svc.cluster.local"


def test_a_folder_that_is_not_a_recording_is_a_clear_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["journey", "--bundle", str(tmp_path)])
    assert out.exit_code == 1
    assert f"{tmp_path} is not a recording: no bundle.json" in out.output
