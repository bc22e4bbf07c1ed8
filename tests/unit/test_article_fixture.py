"""The tests' article cluster is the shipped recording's: same nodes, pods, host veths, services and VNI."""

from __future__ import annotations

from dataclasses import replace

from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE, Bundle
from tests.fakes import article
from tests.fakes.article_bundle import article_topology


def test_the_fixture_names_what_the_recording_shows() -> None:
    recorded = Bundle.load(ARTICLE_BUNDLE).topology
    assert recorded.cluster == article.CLUSTER
    assert [(n.name, n.address) for n in recorded.nodes] == [
        (article.NODE0, article.NODE0_IP),
        (article.NODE1, article.NODE1_IP),
        (article.NODE2, article.NODE2_IP),
    ]
    node1, node2 = recorded.node(article.NODE1), recorded.node(article.NODE2)
    assert node1 is not None and node2 is not None
    # the recording's pods carry their routes; the fixture's pods only what the tests draw
    assert replace(node1.pods[0], mtu=None, routes=()) == article.CLIENT_POD
    assert replace(node2.pods[0], mtu=None, routes=()) == article.SERVER_POD
    assert {(s.namespace, s.name, s.cluster_ip) for s in article.SERVICES} <= {
        (s.namespace, s.name, s.cluster_ip) for s in recorded.services
    }
    kube_dns = next(s for s in recorded.services if s.name == "kube-dns")
    assert (kube_dns.cluster_ip, kube_dns.endpoints) == (article.KUBE_DNS, (article.DNS_POD,))
    for node in (node1, node2):
        vxlan = node.interface("cilium_vxlan")
        assert vxlan is not None and vxlan.vxlan is not None
        assert (vxlan.vxlan.vni, vxlan.vxlan.port) == (article.VNI, article.VXLAN_PORT)


def test_the_small_bundle_puts_each_pods_host_veth_on_its_node() -> None:
    topology = article_topology()
    for node_name, pod in ((article.NODE1, article.CLIENT_POD), (article.NODE2, article.SERVER_POD)):
        node = topology.node(node_name)
        assert node is not None and node.pods == (pod,)
        veth = node.interface(article.CLIENT_VETH if pod is article.CLIENT_POD else article.SERVER_VETH)
        assert veth is not None and veth.ifindex == pod.host_ifindex
