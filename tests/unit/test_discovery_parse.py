"""Discovery parsers: real `ip -j` output from a lab node, then thousands of broken variants of it.

data/discovery_node2.txt is the discovery script's real output on the lab's node-2 (iproute2 6.1):
two pods (wrk-2's nc pod, CoreDNS running dnsmasq) and the VPC netns behind ens4.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labyrinth_tui.model.topology import InterfaceKind, Node
from labyrinth_tui.nodes.errors import NodeUnreachable
from labyrinth_tui.nodes.runner import CommandResult
from labyrinth_tui.probes.discovery import discover, discover_node, parse_discovery
from labyrinth_tui.probes.iproute import DiscoveryError, parse_interfaces
from tests.fakes import DATA

NODE2_FILE = DATA / "discovery_node2.txt"
MARKER = "=LABYRINTH-0123456789abcdef="
REAL = NODE2_FILE.read_text()
IDENTITIES = {
    "10.0.2.215": ("wrk-2", "node-wrk-2-ubuntu24-85748464f7-mwmrt"),
    "10.0.2.17": ("kube-system", "coredns-674b8bbfcf-qwkfz"),
}


def parse(text: str, identities: dict[str, tuple[str, str]] | None = None) -> Node:
    return parse_discovery(
        text, marker=MARKER, node="node-2", address="10.168.0.5", pod_identities=identities
    )


def test_real_node_output_gives_the_tree() -> None:
    node = parse(REAL, IDENTITIES)
    assert (node.partial, node.error, node.reachable) == (False, None, True)
    kinds = {i.name: i.kind for i in node.interfaces}
    assert kinds["cilium_vxlan"] is InterfaceKind.VXLAN and kinds["lo"] is InterfaceKind.LOOPBACK
    assert kinds["ens4"] is kinds["cilium_host"] is InterfaceKind.VETH
    vxlan = node.interface("cilium_vxlan")
    assert vxlan is not None and vxlan.vxlan is not None
    assert (vxlan.vxlan.vni, vxlan.vxlan.port, vxlan.vxlan.local) == (2, 8472, "10.168.0.5")
    ens4 = node.interface("ens4")
    assert ens4 is not None and ens4.addresses == ("10.168.0.5/24",) and ens4.mtu == 1460
    # the same-namespace pair: cilium_host ↔ cilium_net, by name
    host, net = node.interface("cilium_host"), node.interface("cilium_net")
    assert host and net and host.peer_ifindex == net.ifindex and net.peer_ifindex == host.ifindex
    pods = {p.ip: p for p in node.pods}
    assert set(pods) == {"10.0.2.215", "10.0.2.17"}  # the VPC behind ens4 is not a pod
    dns = pods["10.0.2.17"]
    assert (dns.namespace, dns.name, dns.gateway) == ("kube-system", "coredns-674b8bbfcf-qwkfz", "10.0.2.244")
    assert dns.host_veth and dns.host_veth.startswith("lxc") and dns.netns.startswith("labyrinth.")
    lxc = node.interface(dns.host_veth)
    assert lxc is not None and lxc.ifindex == dns.host_ifindex and lxc.peer_ifindex == dns.pod_ifindex
    assert any("dnsmasq" in p for p in dns.processes)
    assert dns.routes[0].dst == "default" and dns.routes[0].mtu == 1410
    assert {(v.host_veth, v.pod_interface) for v in node.veth_pairs} >= {(dns.host_veth, "eth0")}
    assert "labyrinth.vpc" in node.netns


def test_pods_without_identity_keep_their_netns_name() -> None:
    node = parse(REAL, {})
    assert {p.name for p in node.pods} == {p.netns for p in node.pods}
    assert {p.namespace for p in node.pods} == {""}


def test_id_pointing_nowhere_is_partial_and_says_which_veth() -> None:
    # the node's netns list no longer names id 1: the veth using it cannot be followed
    broken = REAL.replace('"id":1}', '"id":41}')
    node = parse(broken, IDENTITIES)
    assert node.partial and node.error and "netns id" in node.error
    assert len(node.pods) == 1  # the other pod is still there


def test_unknown_link_kind_is_a_device_keeping_the_kernels_word() -> None:
    links = [{"ifindex": 1, "ifname": "gnv0", "linkinfo": {"info_kind": "geneve"}, "mtu": 1400}]
    interfaces, problems = parse_interfaces(json.dumps(links))
    assert problems == [] and interfaces[0].kind is InterfaceKind.DEVICE
    assert interfaces[0].link_kind == "geneve" and interfaces[0].mtu == 1400


def test_no_interface_listing_is_a_clear_error() -> None:
    for text in ("", "garbage", f"{MARKER} begin hostname\nn1\n{MARKER} end hostname 0\n"):
        with pytest.raises(DiscoveryError, match="no interface listing"):
            parse(text)
    with pytest.raises(DiscoveryError, match="not JSON"):
        parse(f'{MARKER} begin addr\n[{{"ifindex": 1,\n{MARKER} end addr 0\n')


def _host_veths(count: int) -> str:
    links = [
        {"ifindex": i, "ifname": f"lxc{i:012x}", "link_index": 2, "link_netnsid": i, "mtu": 1500,
         "linkinfo": {"info_kind": "veth"}, "addr_info": []}
        for i in range(1, count + 1)
    ]  # fmt: skip
    return f"{MARKER} begin addr\n{json.dumps(links)}\n{MARKER} end addr 0\n"


def test_ten_thousand_interfaces_pointing_nowhere() -> None:
    node = parse(_host_veths(10_000))
    assert len(node.interfaces) == 10_000 and node.pods == ()
    # 10 000 veths without a netns name, plus no route and no netns listing; five are spelled out
    assert node.partial and node.error is not None and node.error.endswith("(and 9997 more)")
    assert "lxc000000000001: its peer's netns id 1 has no name here" in node.error


# --- fuzz: the real output, broken in every way hypothesis can think of --------------------------


def _mutate(value: Any, rnd: random.Random) -> Any:
    """The same JSON with keys dropped, values of the wrong type, and ids moved."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            roll = rnd.random()
            if roll < 0.08:
                continue
            if roll < 0.16:
                item = rnd.choice([None, "x", -1, 0, 2**40, True, [], {}, 1.5, "\u0000", item])
            out[key] = _mutate(item, rnd)
        return out
    if isinstance(value, list):
        return [_mutate(v, rnd) for v in value if rnd.random() > 0.05]
    if isinstance(value, int) and not isinstance(value, bool) and rnd.random() < 0.2:
        return rnd.choice([value + 1, value - 1, 0, -value, 99999])
    return value


def _mutate_sections(text: str, seed: int) -> str:
    rnd = random.Random(seed)
    out = []
    for line in text.split("\n"):
        if line.startswith("[") and rnd.random() < 0.7:
            line = json.dumps(_mutate(json.loads(line), rnd))
        elif line.startswith(MARKER) and rnd.random() < 0.05:
            continue  # a lost marker line
        out.append(line)
    return "\n".join(out)


def _check(text: str) -> None:
    try:
        node = parse(text, IDENTITIES)
    except DiscoveryError as exc:
        assert str(exc)
        return
    assert node.partial == (node.error is not None)
    names = {i.name for i in node.interfaces}
    for pod in node.pods:
        assert pod.host_veth in names and pod.netns in node.netns
    for pair in node.veth_pairs:
        assert pair.host_veth in names


FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(REAL)))
def test_fuzz_truncated_output(cut: int) -> None:
    _check(REAL[:cut])


@FUZZ
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_fuzz_mutated_json(seed: int) -> None:
    _check(_mutate_sections(REAL, seed))


@FUZZ
@given(
    junk=st.text(max_size=300),
    where=st.integers(min_value=0, max_value=len(REAL)),
    section=st.sampled_from(["addr", "route", "netns", "ip", "netns-inodes", "ps", "hostname"]),
)
def test_fuzz_garbage_inside_and_between_sections(junk: str, where: int, section: str) -> None:
    _check(REAL[:where] + junk + REAL[where:])
    _check(f"{MARKER} begin {section}\n{junk}\n{MARKER} end {section} 0\n" + REAL)
    _check(REAL.replace(f"{MARKER} begin {section}\n", f"{MARKER} begin {section}\n{junk}", 1))


# --- discover_node: one round trip, never raising for a node that does not answer ----------------


class ScriptedNode:
    def __init__(self, name: str, stdout: str | Exception) -> None:
        self._name, self.stdout, self.calls = name, stdout, 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def address(self) -> str:
        return "10.168.0.5"

    async def run(
        self, argv: Any, *, timeout: float | None = 30.0, input: str | None = None, check: bool = True
    ) -> CommandResult:
        self.calls += 1
        assert list(argv) == ["sh", "-s"] and input is not None and "ip -j -d addr show" in input
        if isinstance(self.stdout, Exception):
            raise self.stdout
        marker = input.split("printf '%s begin %s\\n' ", 1)[1].split(" ", 1)[0]
        return CommandResult(tuple(argv), 0, self.stdout.replace(MARKER, marker), "")


async def test_discover_fans_out_and_a_dead_node_does_not_stop_the_others() -> None:
    good = ScriptedNode("node-2", REAL)
    dead = ScriptedNode("node-1", NodeUnreachable("node-1", "cannot connect: Connection refused"))
    broken = ScriptedNode("node-0", "nothing useful")
    buggy = ScriptedNode("node-3", RuntimeError("a bug"))
    nodes = await discover([good, dead, broken, buggy], IDENTITIES)
    assert [n.name for n in nodes] == ["node-2", "node-1", "node-0", "node-3"]
    assert nodes[0].reachable and len(nodes[0].pods) == 2 and good.calls == 1
    assert not nodes[1].reachable and nodes[1].error == "cannot connect: Connection refused"
    assert nodes[2].reachable and nodes[2].partial and "no interface listing" in (nodes[2].error or "")
    assert not nodes[3].reachable and "a bug" in (nodes[3].error or "")
    assert (await discover_node(dead)).reachable is False
