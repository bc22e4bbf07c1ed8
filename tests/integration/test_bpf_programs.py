"""The datapath's programs pass the verifier and do their work on crafted packets (BPF_PROG_TEST_RUN):
ClusterIP → backend, reverse NAT of the reply, checksums checked by an independent parser, flows spread."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from labyrinth_tui.lab.bpf import libbpf
from labyrinth_tui.lab.bpf.compile import clang_argv, objects
from labyrinth_tui.lab.bpf.maps import backend_entry, frontends, service_entries, unpack_counter
from labyrinth_tui.lab.spec import PodSpec, article_spec
from tests.conftest import needs_root
from tests.integration.packets4 import frame, parse

pytestmark = needs_root
TC_ACT_OK = 0
CLIENT, CLUSTER_IP, SERVER = "10.0.1.15", "10.105.134.33", "10.0.2.215"


@pytest.fixture
def lxc(tmp_path: Path) -> Iterator[libbpf.BpfObject]:
    """bpf_lxc loaded (through the verifier) with the article's service table, maps private to the test."""
    spec = article_spec()
    with libbpf.BpfObject(str(objects()["bpf_lxc"])) as obj:
        _fill(obj, spec)
        yield obj


def _fill(obj: libbpf.BpfObject, spec: object) -> None:
    services, backends = obj.map_fd("lb4_services"), obj.map_fd("lb4_backends")
    for frontend in frontends(spec):  # type: ignore[arg-type]
        for backend in frontend.backends:
            libbpf.map_update(backends, *backend_entry(backend))
        for key, value in service_entries(frontend):
            libbpf.map_update(services, key, value)


def run(obj: libbpf.BpfObject, program: str, packet: bytes) -> bytes:
    verdict, out = libbpf.prog_test_run(obj.prog_fd(program), packet)
    assert verdict == TC_ACT_OK
    return out


def test_every_program_passes_the_verifier() -> None:
    for family, programs in {
        "bpf_lxc": ["cil_from_container"],
        "bpf_overlay": ["cil_from_overlay", "cil_to_overlay"],
        "bpf_host": ["cil_from_host", "cil_to_host", "cil_from_netdev"],
    }.items():
        with libbpf.BpfObject(str(objects()[family])) as obj:
            assert all(obj.prog_fd(name) > 0 for name in programs)


def test_syn_to_the_cluster_ip_leaves_for_the_server_pod_and_the_reply_comes_back_from_the_cluster_ip(
    lxc: libbpf.BpfObject,
) -> None:
    syn = parse(run(lxc, "cil_from_container", frame(CLIENT, CLUSTER_IP, 41208, 9999)))
    assert (syn.src, syn.sport, syn.dst, syn.dport) == (CLIENT, 41208, SERVER, 9999)
    assert syn.ip_ok and syn.l4_ok
    with libbpf.BpfObject(str(objects()["bpf_overlay"])) as overlay:
        # the overlay's program on another load has its own conntrack: no entry, so no rewrite
        untouched = parse(run(overlay, "cil_from_overlay", frame(SERVER, CLIENT, 9999, 41208)))
        assert (untouched.src, untouched.sport) == (SERVER, 9999)
    # a reply through the same node's maps (bpf_lxc's rev-NAT path: a local backend) gets the ClusterIP back
    reply = parse(run(lxc, "cil_from_container", frame(SERVER, CLIENT, 9999, 41208)))
    assert (reply.src, reply.sport, reply.dst, reply.dport) == (CLUSTER_IP, 9999, CLIENT, 41208)
    assert reply.ip_ok and reply.l4_ok
    counters = list(libbpf.map_items(lxc.map_fd("cil_counters"), 8, 16))
    assert [unpack_counter(v) for _, v in counters] == [(2, 2)]


def test_dns_to_kube_dns_udp_and_tcp_with_checksums(lxc: libbpf.BpfObject) -> None:
    for proto in ("UDP", "TCP"):
        query = parse(run(lxc, "cil_from_container", frame(CLIENT, "10.96.0.10", 53001, 53, proto)))
        assert (query.dst, query.dport) == ("10.0.2.17", 53)
        assert query.ip_ok and query.l4_ok, proto
        answer = parse(run(lxc, "cil_from_container", frame("10.0.2.17", CLIENT, 53, 53001, proto)))
        assert (answer.src, answer.sport) == ("10.96.0.10", 53)
        assert answer.ip_ok and answer.l4_ok, proto


def test_a_udp_datagram_without_checksum_keeps_none(lxc: libbpf.BpfObject) -> None:
    out = parse(
        run(lxc, "cil_from_container", frame(CLIENT, "10.96.0.10", 53002, 53, "UDP", udp_checksum=False))
    )
    assert out.dst == "10.0.2.17" and out.ip_ok and out.l4_checksum == 0


def test_packets_not_for_a_service_pass_untouched(lxc: libbpf.BpfObject) -> None:
    packet = frame(CLIENT, SERVER, 41000, 9999)
    assert run(lxc, "cil_from_container", packet)[: len(packet)] == packet
    other_port = frame(CLIENT, CLUSTER_IP, 41000, 80)
    assert run(lxc, "cil_from_container", other_port)[: len(other_port)] == other_port


def test_several_backends_are_spread_by_flow_and_a_flow_keeps_its_backend() -> None:
    spec = article_spec(pods_per_node=2)
    backends = {p.ip for p in spec.pods if p.app == "extra"}
    assert len(backends) == 6
    with libbpf.BpfObject(str(objects()["bpf_lxc"])) as obj:
        _fill(obj, spec)
        chosen = Counter(
            parse(run(obj, "cil_from_container", frame(CLIENT, "10.96.200.200", sport, 8080))).dst
            for sport in range(40000, 40600)
        )
        assert set(chosen) == backends
        assert min(chosen.values()) > 600 / 6 / 2, chosen  # none starved
        again = {
            parse(run(obj, "cil_from_container", frame(CLIENT, "10.96.200.200", 40123, 8080))).dst
            for _ in range(5)
        }
        assert len(again) == 1


def test_a_program_the_verifier_rejects_reports_the_verifiers_own_words(tmp_path: Path) -> None:
    source = tmp_path / "bad.c"
    source.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        'SEC("tc") int cil_bad(struct __sk_buff *skb) {\n'
        "  return *(int *)(long)skb->data; /* no bounds check against data_end */\n}\n"
        'char _license[] SEC("license") = "GPL";\n'
    )
    argv = clang_argv(source, tmp_path / "bad.o")
    assert os.spawnvp(os.P_WAIT, argv[0], argv) == 0
    with pytest.raises(libbpf.BpfError) as failed:
        libbpf.BpfObject(str(tmp_path / "bad.o"))
    message = str(failed.value)
    assert message.startswith("load bad.o: Permission denied")
    assert "invalid access to packet" in message
    assert len(message.splitlines()) <= 1 + libbpf.LOG_TAIL_LINES


def test_pods_without_a_service_are_no_backends() -> None:
    spec = article_spec()
    lonely = replace(spec, pods=(*spec.pods, PodSpec("x", "lonely", "node-1", "10.0.1.99", "lonely")))
    assert all("10.0.1.99" not in {b.address for b in f.backends} for f in frontends(lonely))
