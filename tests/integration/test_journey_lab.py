"""On a real lab: the article's SYN crosses six captured hops with the DNAT and the VNI where they happen,
and `labyrinth tour` passes every step of the article."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import handshake_path, labyrinth, overlay_path


@pytest.fixture(scope="module")
def prefix(lab_prefix: str) -> str:
    """The module's lab (tests/integration/conftest.py builds it and always takes it down)."""
    return lab_prefix


def test_the_syn_crosses_six_hops_with_dnat_and_vni(prefix: str) -> None:
    out = labyrinth("journey", "--json", "--prefix", prefix)
    report = json.loads(out.stdout)
    client, server = report["client"], report["server"]
    assert all(s["state"] == "capturing" for s in report["streams"]), report["streams"]
    syn = report["handshake"]["syn"]
    assert handshake_path(report, "syn") == overlay_path(
        "node-1", client["host_veth"], "node-2", server["host_veth"]
    )
    assert [h["dst"] for h in syn["hops"]] == ["10.105.134.33:9999"] + ["10.0.2.215:9999"] * 5
    # the DNAT happens on node-1 between the client's lxc and cilium_vxlan, and only there
    assert [h["changes"] for h in syn["hops"]][1] == ["DNAT 10.105.134.33:9999 → 10.0.2.215:9999"]
    assert all(
        not any(c.startswith("DNAT") for c in h["changes"]) for i, h in enumerate(syn["hops"]) if i != 1
    )
    ens4 = [h for h in syn["hops"] if h["interface"] == "ens4"]
    assert all(h["vni"] is not None and h["outer"].endswith("10.168.0.5:8472") for h in ens4)
    assert ens4[0]["changes"][0].startswith(f"encap VXLAN VNI {ens4[0]['vni']} 10.168.0.4:")
    assert report["handshake"]["complete"] is True
    assert report["dns"]["answer"] == "10.105.134.33"
    assert report["received"] == "asdfasdfasdfasd\n"
    node1 = next(e for e in report["evidence"] if e["node"] == "node-1")
    assert any(m["target"] == "DNAT" and m["packets"] == 1 for m in node1["moved"])


def test_the_tour_passes_every_step(prefix: str) -> None:
    out = labyrinth("tour", "--prefix", prefix, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("✓") == 7 and "✗" not in out.stdout
    assert out.stdout.rstrip().endswith("7/7 steps passed")


def test_tour_on_a_lab_that_is_not_up_says_how_to_start_it() -> None:
    out = labyrinth("tour", "--prefix", "tnolab0", check=False)
    assert out.returncode == 1
    assert "lab 'tnolab0' is not up: run `labyrinth lab up --prefix tnolab0` first" in out.stderr


def test_another_pair_the_wrk_2_pod_to_wrk_1_s_service_crosses_the_mirrored_hops(prefix: str) -> None:
    out = labyrinth(
        "journey", "--json", "--prefix", prefix,
        "--from", "wrk-2/node-wrk-2-ubuntu24", "--to", "node-wrk-1-ubuntu24.wrk-1:9999", "--payload", "back",
    )  # fmt: skip
    report = json.loads(out.stdout)
    client, server = report["client"], report["server"]
    assert (client["node"], server["node"], server["ip"]) == ("node-2", "node-1", "10.0.1.15")
    syn = report["handshake"]["syn"]
    assert handshake_path(report, "syn") == overlay_path(
        "node-2", client["host_veth"], "node-1", server["host_veth"]
    )
    assert syn["hops"][1]["changes"] == ["DNAT 10.98.41.127:9999 → 10.0.1.15:9999"]
    assert report["handshake"]["complete"] is True and report["received"] == "back\n"


def test_a_pod_dialled_by_its_ip_has_no_dns_and_no_dnat(prefix: str) -> None:
    out = labyrinth("journey", "--json", "--prefix", prefix, "--to", "wrk-2/node-wrk-2-ubuntu24:9999")
    report = json.loads(out.stdout)
    syn = report["handshake"]["syn"]
    assert len(syn["hops"]) == 6 and all(h["dst"] == "10.0.2.215:9999" for h in syn["hops"])
    assert not any(c.startswith("DNAT") for h in syn["hops"] for c in h["changes"])
    assert report["dns"]["walk"] == []


def test_a_target_the_topology_lacks_is_one_line_naming_what_exists(prefix: str) -> None:
    out = labyrinth("journey", "--prefix", prefix, "--to", "nope.wrk-2:80", check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "Error: no service 'nope.wrk-2'; services: kube-dns.kube-system, node-wrk-1-ubuntu24.wrk-1, "
        "node-wrk-2-ubuntu24.wrk-2"
    )
