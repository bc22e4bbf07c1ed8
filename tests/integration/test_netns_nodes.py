"""Real namespaces, real `ip -j`, a real sshd inside a node netns reached through NetnsConnector."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from labyrinth_tui.model.topology import InterfaceKind, Node
from labyrinth_tui.nodes.commands import ForEachNetns, Section, batch_script
from labyrinth_tui.nodes.connect import NetnsConnector
from labyrinth_tui.nodes.errors import HostKeyRejected, NodeUnreachable
from labyrinth_tui.nodes.runner import CommandResult
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.discovery import DISCOVERY, discover_node, discovery_script, parse_discovery
from tests.conftest import needs_root
from tests.integration.netns_node import ScratchNode, Sshd, scratch_node, sshd_in

pytestmark = needs_root
IDENTITIES = {"10.0.1.15": ("wrk-1", "node-wrk-1-ubuntu24-684f7d8fd6-2zncq")}


@pytest.fixture(scope="module")
def scratch() -> Iterator[ScratchNode]:
    with scratch_node() as node:
        yield node


@pytest.fixture(scope="module")
def sshd(scratch: ScratchNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with sshd_in(scratch.node, "10.168.0.4", tmp_path_factory.mktemp("sshd")) as server:
        yield server


def lab_connector(sshd: Sshd, **change: str) -> NetnsConnector:
    fields = {
        "netns": sshd.netns,
        "address": sshd.address,
        "port": sshd.port,
        "username": "root",
        "client_key_path": sshd.client_key,
        "host_key_line": sshd.host_key_line,
    }
    return NetnsConnector(**{**fields, **change})  # type: ignore[arg-type]


def root_netns_state() -> tuple[str, str]:
    links = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout
    listeners = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    # loopback listeners come and go with whatever else runs tests on this machine (fake servers on
    # 127.0.0.1); what the lab must never add is a listener on any other address of the root netns
    kept = sorted(
        line.split()[3] for line in listeners.splitlines() if not line.split()[3].startswith("127.")
    )
    return links, "\n".join(kept)


# --- parsers on real `ip -j` output ----------------------------------------------------------------


def test_real_ip_json_parses_into_the_tree(scratch: ScratchNode) -> None:
    marker = "=LABYRINTH-feedfacefeedface="
    out = subprocess.run(
        ["ip", "netns", "exec", scratch.node, "sh", "-s"],
        input=discovery_script(marker),
        capture_output=True,
        text=True,
        check=True,
    )
    node = parse_discovery(
        out.stdout, marker=marker, node="node-1", address="10.168.0.4", pod_identities=IDENTITIES
    )
    assert not node.partial, node.error
    pods = {p.netns: p for p in node.pods}
    assert set(pods) == {scratch.pod_a, scratch.pod_b}  # the VPC behind ens4 is a veth peer, not a pod
    a, b = pods[scratch.pod_a], pods[scratch.pod_b]
    assert (a.namespace, a.name, a.ip, a.host_veth) == (
        *IDENTITIES["10.0.1.15"],
        "10.0.1.15",
        scratch.pod_a_veth,
    )
    assert (b.namespace, b.name, b.ip, b.host_veth) == ("", scratch.pod_b, "10.0.1.16", scratch.pod_b_veth)
    assert a.gateway == b.gateway == "10.0.1.49" and a.routes[0].mtu == 1410
    # host veth ↔ pod eth0, matched through link_netnsid and the peer ifindex: check against the kernel
    for pod in (a, b):
        host = node.interface(pod.host_veth or "")
        assert host is not None and host.ifindex == pod.host_ifindex and host.peer_ifindex == pod.pod_ifindex
        inside = json.loads(
            subprocess.run(
                ["ip", "-n", pod.netns, "-j", "link", "show", "eth0"], capture_output=True, check=True
            ).stdout
        )[0]
        assert inside["ifindex"] == pod.pod_ifindex and inside["link_index"] == pod.host_ifindex
    assert any(p.startswith(f"{scratch.pod_a_pid} ") and "sleep 600" in p for p in a.processes)
    vxlan = node.interface("cilium_vxlan")
    assert vxlan and vxlan.kind is InterfaceKind.VXLAN and vxlan.vxlan
    assert (vxlan.vxlan.vni, vxlan.vxlan.port, vxlan.vxlan.local) == (2, 8472, "10.168.0.4")
    pairs = {(v.host_veth, v.pod_netns, v.pod_interface) for v in node.veth_pairs}
    assert ("ens4", scratch.vpc, "v-node") in pairs and (scratch.pod_a_veth, scratch.pod_a, "eth0") in pairs


def _discovered(scratch: ScratchNode, items: tuple[Section | ForEachNetns, ...]) -> Node:
    marker = "=LABYRINTH-feedfacefeedface="
    out = subprocess.run(
        ["ip", "netns", "exec", scratch.node, "sh", "-s"],
        input=batch_script(marker, items),
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_discovery(
        out.stdout, marker=marker, node="node-1", address="10.168.0.4", pod_identities=IDENTITIES
    )


def test_the_python3_dump_of_every_pod_netns_reads_as_the_per_pod_ip_loop(scratch: ScratchNode) -> None:
    loop = next(item for item in DISCOVERY if isinstance(item, ForEachNetns))
    assert loop.dump is not None
    at = DISCOVERY.index(loop)
    only_loop = (*DISCOVERY[:at], replace(loop, dump=None), *DISCOVERY[at + 1 :])
    # the loop's command cannot run: what is found comes from the one python3 process
    only_dump = (*DISCOVERY[:at], replace(loop, sections=(Section("ip", ("false",)),)), *DISCOVERY[at + 1 :])
    by_loop, by_dump = _discovered(scratch, only_loop), _discovered(scratch, only_dump)
    assert not by_dump.partial, by_dump.error
    assert {p.netns for p in by_dump.pods} == {scratch.pod_a, scratch.pod_b}
    assert by_dump == by_loop


# --- NetnsConnector and NodeSession against the real sshd -----------------------------------------


async def test_lab_key_reaches_sshd_inside_the_netns_and_root_is_untouched(sshd: Sshd) -> None:
    before = root_netns_state()
    async with NodeSession("node-1", lab_connector(sshd)) as node:
        result = await node.run(["ip", "-j", "addr", "show", "ens4"])
        assert json.loads(result.stdout)[0]["addr_info"][0]["local"] == "10.168.0.4"
        assert (await node.run(["id", "-u"])).stdout == "0\n"
    assert root_netns_state() == before  # no interface, address or listener appeared in the root netns


async def test_another_client_key_is_refused(sshd: Sshd) -> None:
    session = NodeSession("node-1", lab_connector(sshd, client_key_path=sshd.other_client_key))
    with pytest.raises(NodeUnreachable, match="authentication") as info:
        await session.run(["true"])
    assert not info.value.retryable and info.value.node == "node-1"


async def test_a_host_key_other_than_the_pinned_one_is_rejected(sshd: Sshd, tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    wrong = (tmp_path / "k.pub").read_text().strip()
    with pytest.raises(HostKeyRejected, match="pinned"):
        await NodeSession("node-1", lab_connector(sshd, host_key_line=wrong)).run(["true"])


async def test_a_missing_netns_is_unreachable_with_the_reason(sshd: Sshd) -> None:
    with pytest.raises(NodeUnreachable, match="does not exist"):
        await NodeSession("node-9", lab_connector(sshd, netns=f"{sshd.netns}-gone")).run(["true"])


async def test_hostile_arguments_arrive_literally_over_real_ssh(sshd: Sshd) -> None:
    hostile = ["a;id", "$(id)", "`id`", "-w/x", "a'b", 'a"b', "a\nb", "é ü", "*", "$HOME", "a\\b", "!"]
    async with NodeSession("node-1", lab_connector(sshd)) as node:
        result = await node.run(["printf", "%s\\0", *hostile])
    assert result.stdout.split("\0")[:-1] == hostile


def _group_alive(pgid: int) -> bool:
    """Any live (not zombie) process in group `pgid`? The test sshd shares our PID namespace."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


async def test_stream_yields_lines_and_stop_ends_the_whole_process_group(sshd: Sshd) -> None:
    # a parent that starts a child, like tshark starting dumpcap
    script = "sleep 600 & i=0; while :; do echo line $i; i=$((i+1)); sleep 0.05; done"
    async with NodeSession("node-1", lab_connector(sshd)) as node:
        async with node.stream(["sh", "-c", script]) as lines:
            assert lines.pgid is not None and _group_alive(lines.pgid)
            got = []
            async for line in lines:
                got.append(line)
                if len(got) == 3:
                    break
            pgid = lines.pgid
        assert got == ["line 0", "line 1", "line 2"]
        assert not _group_alive(pgid)  # the child `sleep 600` went with it: no orphans
        assert (await node.run(["echo", "pool still fine"])).stdout == "pool still fine\n"


async def test_stop_escalates_to_kill_for_a_command_ignoring_term(sshd: Sshd) -> None:
    async with NodeSession("node-1", lab_connector(sshd)) as node:
        lines = node.stream(["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
        await lines.start()
        assert await anext(lines) == "ready"
        pgid = lines.pgid
        assert pgid is not None
        await lines.stop(grace=0.5)
        assert not _group_alive(pgid)


async def test_stream_ends_with_the_exit_status(sshd: Sshd) -> None:
    async with NodeSession("node-1", lab_connector(sshd)) as node:
        async with node.stream(["sh", "-c", "printf 'a\\nb\\n'; exit 3"]) as lines:
            assert [line async for line in lines] == ["a", "b"]
        assert lines.exit_status == 3


class Counting:
    """A session wrapper that counts round trips."""

    def __init__(self, session: NodeSession) -> None:
        self.session, self.round_trips = session, 0
        self.name, self.address = session.name, session.address

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = 30.0,
        input: str | None = None,
        check: bool = True,
    ) -> CommandResult:
        self.round_trips += 1
        return await self.session.run(argv, timeout=timeout, input=input, check=check)


async def test_discover_node_over_real_ssh_in_one_round_trip(sshd: Sshd, scratch: ScratchNode) -> None:
    async with NodeSession("node-1", lab_connector(sshd)) as session:
        counting = Counting(session)
        node = await discover_node(counting, IDENTITIES)
    assert counting.round_trips == 1
    assert node.reachable and not node.partial, node.error
    assert node.hostname and node.address == "10.168.0.4"
    assert {p.ip: p.host_veth for p in node.pods} == {
        "10.0.1.15": scratch.pod_a_veth,
        "10.0.1.16": scratch.pod_b_veth,
    }
    assert sshd.pid > 0 and any(
        p.startswith(f"{scratch.pod_a_pid} ") for p in node.pods[0].processes + node.pods[1].processes
    )
