"""The lab's spec and kube-proxy rules, without root: names as the article and kube-proxy have them."""

from __future__ import annotations

import ipaddress

import pytest

from labyrinth_tui.lab import links
from labyrinth_tui.lab.kubeproxy import nat_rules, sep_chain, svc_chain
from labyrinth_tui.lab.spec import article_spec


def test_kube_proxy_chain_names_are_the_articles() -> None:
    spec = article_spec()
    svc = next(s for s in spec.services if s.name == "node-wrk-2-ubuntu24")
    tcp, udp = svc.ports
    # the article's `iptables -t nat -L -v` on node-1 shows exactly these
    assert svc_chain(svc, tcp) == "KUBE-SVC-IWPXKGE4TAJJE4GD"
    assert svc_chain(svc, udp) == "KUBE-SVC-HX23KANCFUYJINGR"
    assert sep_chain(svc, tcp, "10.0.2.215:9999") == "KUBE-SEP-FXHI2MOU7V5XIHJD"
    assert sep_chain(svc, udp, "10.0.2.215:9999") == "KUBE-SEP-VWQM2HSDJBARAX5I"


def test_nat_rules_carry_kube_proxys_comments_and_dnat() -> None:
    rules = nat_rules(article_spec())
    assert rules.startswith("*nat\n") and rules.rstrip().endswith("COMMIT")
    assert (
        "-A KUBE-SERVICES -d 10.105.134.33/32 -p tcp -m comment "
        '--comment "wrk-2/node-wrk-2-ubuntu24:tcp-9999 cluster IP" '
        "-m tcp --dport 9999 -j KUBE-SVC-IWPXKGE4TAJJE4GD"
    ) in rules
    assert (
        '-A KUBE-SEP-FXHI2MOU7V5XIHJD -p tcp -m comment --comment "wrk-2/node-wrk-2-ubuntu24:tcp-9999" '
        "-m tcp -j DNAT --to-destination 10.0.2.215:9999"
    ) in rules
    assert '--comment "kube-system/kube-dns:dns cluster IP"' in rules
    assert "DNAT --to-destination 10.0.2.17:53" in rules


def test_names_are_stable_prefixed_and_valid() -> None:
    a, b = article_spec("alpha"), article_spec("alpha")
    assert [a.pod_netns(p) for p in a.pods] == [b.pod_netns(p) for p in b.pods]
    for p in a.pods:
        assert a.pod_netns(p).startswith("alpha.")
        assert len(p.host_veth) == 15 and p.host_veth.startswith("lxc")
    assert article_spec("beta").pod_netns(a.pods[0]) != a.pod_netns(a.pods[0])


def test_scale_pods_get_unique_addresses_in_their_node_cidr() -> None:
    spec = article_spec(pods_per_node=100)
    assert len(spec.pods) == 303
    ips = [p.ip for p in spec.pods]
    assert len(set(ips)) == len(ips)
    assert len({p.host_veth for p in spec.pods}) == len(spec.pods)
    for p in spec.pods:
        node = spec.node(p.node)
        assert p.ip.rsplit(".", 1)[0] == node.pod_cidr.rsplit(".", 1)[0]
        assert p.ip != node.gateway


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix": "Bad Prefix"}, "prefix"),
        ({"prefix": "x" * 17}, "prefix"),
        ({"datapath": "cilium"}, "the lab has ebpf, iptables"),
        ({"bpf_attach": "xdp"}, "auto, tcx, tc"),
        ({"pods_per_node": 1001}, "0 to 1000"),
        ({"workers": 1}, "--workers takes 2"),
        ({"workers": 41}, "to 40"),
    ],
)
def test_bad_options_are_refused_with_a_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        article_spec(**kwargs)  # type: ignore[arg-type]


def test_a_thousand_pods_per_node_on_twenty_workers_get_unique_addresses_routed_to_their_node() -> None:
    spec = article_spec(pods_per_node=1000, workers=20)
    assert [n.name for n in spec.nodes] == [f"node-{k}" for k in range(21)]
    assert len(spec.pods) == 3 + 21 * 1000
    assert len({p.ip for p in spec.pods}) == len(spec.pods)
    assert len({n.address for n in spec.nodes}) == len({n.vxlan_mac for n in spec.nodes}) == 21
    cidrs = {n.name: [ipaddress.ip_network(c) for c in (n.pod_cidr, n.extra_cidr)] for n in spec.nodes}
    every = [c for pair in cidrs.values() for c in pair]
    assert all(not a.overlaps(b) for i, a in enumerate(every) for b in every[i + 1 :])
    cluster = ipaddress.ip_network(spec.cluster_cidr)
    assert all(c.subnet_of(cluster) for c in every)  # kube-proxy does not masquerade them
    for p in spec.pods:
        assert any(ipaddress.ip_address(p.ip) in c for c in cidrs[p.node]), p
    # the article's pods keep their addresses, and a remote node routes the extra range too
    assert spec.find_pod("node-wrk-1").ip == "10.0.1.15" and spec.find_pod("coredns").ip == "10.0.2.17"
    routes = links.node_batch(spec, spec.node("node-1"))
    assert f"route add 10.0.{64 + 4 * 7}.0/22 via 10.0.7.1 dev cilium_vxlan onlink" in routes


def test_find_pod_by_prefix_and_clear_errors() -> None:
    spec = article_spec(pods_per_node=2)
    assert spec.find_pod("node-wrk-1").ip == "10.0.1.15"
    assert spec.find_pod("wrk-2/node-wrk-2-ubuntu24-85748464f7-mwmrt").ip == "10.0.2.215"
    with pytest.raises(KeyError, match="no pod"):
        spec.find_pod("nope")
    with pytest.raises(KeyError, match="matches 6 pods"):
        spec.find_pod("extra")
