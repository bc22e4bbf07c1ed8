"""The lab attached as a cluster and logged into as GCP does: a non-root user whose commands go through
`sudo -n`. The users exist only in a private mount namespace (tests/integration/attach_sudo.py runs there
and prints what it saw); here: what a person would see, and that sudo really ran the commands."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, needs_root
from tests.integration.attach_sudo import NO_SUDO_USER, SUDO_USER
from tests.integration.conftest import handshake_path, labyrinth, overlay_path, unique_prefix


@pytest.fixture(scope="module")
def run() -> Iterator[dict[str, Any]]:
    if os.geteuid() != 0:
        pytest.skip("NEEDS ROOT: the lab builds network namespaces. CI runs as root; run `sudo make test`.")
    prefix = unique_prefix("su")
    with tempfile.TemporaryDirectory(prefix="labyrinth-sudo-") as work:
        os.chmod(work, 0o755)  # the users' homes are in it: sshd and sudo run as them there
        try:
            done = subprocess.run(
                ["unshare", "-m", "--propagation", "private", sys.executable, "-m",
                 "tests.integration.attach_sudo", prefix, work],
                capture_output=True, text=True, timeout=300, cwd=ROOT,
                env={**os.environ, "ATTACH_STARTER_MNT": os.readlink("/proc/self/ns/mnt")},
            )  # fmt: skip
        finally:  # the child takes its lab down; if it was killed, its state still names what to end
            labyrinth("lab", "down", "--prefix", prefix, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        result: dict[str, Any] = json.loads(done.stdout)
        result["prefix"] = prefix
        yield result


def _sudo_commands(run: dict[str, Any]) -> list[str]:
    """What sudo's log says it ran as root for the user: `… : lbsudo : PWD=… ; USER=root ; COMMAND=…`."""
    marker = f" : {SUDO_USER} : "
    return [
        line.split(" ; COMMAND=", 1)[1]
        for line in run["sudo_log"]
        if marker in line and " ; USER=root ; COMMAND=" in line
    ]


@needs_root
def test_the_inventory_logs_in_as_the_user_with_sudo(run: dict[str, Any]) -> None:
    nodes = run["inventory"]["nodes"]
    assert [(n["name"], n["user"], n["sudo"]) for n in nodes] == [
        (n["name"], SUDO_USER, True) for n in run["status"]["nodes"]
    ]


@needs_root
def test_every_node_is_discovered_through_sudo(run: dict[str, Any]) -> None:
    nodes = run["sudo"]["nodes"]
    assert [(n["name"], n["reachable"], n["error"]) for n in nodes] == [
        (n["name"], True, None) for n in run["status"]["nodes"]
    ]
    assert all({"ens4", "cilium_vxlan"} <= set(n["interfaces"]) for n in nodes)
    # every script ran as root through sudo, for that user: discovery's one per node, each journey's
    # evidence one before and one after the traffic per node it crossed, and each capture's setup
    # (filter check + its folder, removed at its end by one `rm -rf` each)
    commands = _sudo_commands(run)
    evidence = sum(len(run["sudo"][k]["evidence"]) for k in ("article", "other"))
    captures = sum(c.startswith("/usr/bin/rm -rf -- /tmp/labyrinth-cap-") for c in commands)
    assert captures >= 6
    assert commands.count("/usr/bin/sh -s") == len(nodes) + 2 * evidence + captures


@needs_root
def test_the_article_pair_crosses_six_hops_with_packets_on_each(run: dict[str, Any]) -> None:
    report = run["sudo"]["article"]
    client, server = report["client"], report["server"]
    six = overlay_path("node-1", client["host_veth"], "node-2", server["host_veth"])
    assert client["host_veth"] and server["host_veth"]
    assert handshake_path(report, "syn") == six
    assert handshake_path(report, "syn_ack") == six[::-1]
    assert report["handshake"]["complete"] is True
    assert report["received"] == "asdfasdfasdfasd\n"
    assert report["dns"]["answer"] == "10.105.134.33"
    assert all(s["state"] == "capturing" and s["packets"] > 0 for s in report["streams"])
    assert not [p for p in report["problems"] if "sudo" in p]
    evidence = {e["node"]: e for e in report["evidence"]}
    assert set(evidence) == {"node-1", "node-2"}
    # what root sees over SSH too (bpftool 7.1 naming no tcx device), nothing that sudo refused
    problems = [p for e in evidence.values() for p in e["problems"]]
    assert not [p for p in problems if "sudo" in p or "password" in p or "not allowed" in p], problems


@needs_root
def test_a_pod_that_is_not_the_articles_reaches_the_other_service(run: dict[str, Any]) -> None:
    report = run["sudo"]["other"]
    client, server = report["client"], report["server"]
    assert (client["namespace"], client["node"]) == ("scale", "node-2")
    assert (server["namespace"], server["node"]) == ("wrk-1", "node-1")
    assert handshake_path(report, "syn") == overlay_path(
        "node-2", client["host_veth"], "node-1", server["host_veth"]
    )
    assert report["received"] == "hello sudo\n"
    assert all(s["packets"] > 0 for s in report["streams"])


@needs_root
def test_captures_and_evidence_ran_as_root_through_sudo_for_the_user(run: dict[str, Any]) -> None:
    """sudo's own log: empty if the commands had run any other way (as root directly, or not at all)."""
    commands = _sudo_commands(run)
    # a capture is tcpdump started by the relay inside the process-group wrapper (`dumpcap -d` only
    # compiles the filter)
    captured = {m for c in commands for m in re.findall(r"\btcpdump -i (\S+)", c)}
    hops = {
        i
        for report in (run["sudo"]["article"], run["sudo"]["other"])
        for _, i in handshake_path(report, "syn")
    }
    assert hops <= captured  # each hop's interface was captured by a capture tool run by sudo
    # a node's evidence is one `sh -s` (counted above) running iptables-save and bpftool: what they
    # read only root can (`iptables-save -c` as a user: "Permission denied (you must be root)")
    evidence = [e for report in (run["sudo"]["article"], run["sudo"]["other"]) for e in report["evidence"]]
    assert evidence and all(e["moved"] for e in evidence)  # kube-proxy's counters that moved
    tcx = [
        re.search(r"bpftool cannot name the device of (\d+) tcx links", p)
        for e in evidence
        for p in e["problems"]
    ]
    assert len([m for m in tcx if m and int(m.group(1)) > 0]) == len(evidence)  # bpftool listed the links


@needs_root
def test_a_user_without_sudo_rights_gets_one_line_naming_node_and_command(run: dict[str, Any]) -> None:
    said = run["no_sudo"]
    assert said["rc"] == 1 and said["stdout"] == ""
    errors = [line for line in said["stderr"].splitlines() if line.startswith("Error:")]
    # the first node whose sudo refused: node-0 as a rule, but on a loaded machine node-0's SSH may fail
    # first for another reason (it is then shown in the tree as unreachable), and the line names the next
    assert len(errors) == 1, said["stderr"]
    assert re.fullmatch(
        r"Error: node-[0-2]: sudo -n refused `sh -s`: a password is required "
        r"\(the SSH user needs passwordless sudo on the node, or log in as root\)",
        errors[0],
    ), errors
    assert "Traceback" not in said["stderr"]


@needs_root
def test_nothing_is_left_behind(run: dict[str, Any]) -> None:
    for user in (SUDO_USER, NO_SUDO_USER):
        with pytest.raises(KeyError):
            pwd.getpwnam(user)  # the users never existed outside the private namespace
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not [line for line in netns.splitlines() if line.startswith(f"{run['prefix']}.")]
    assert not os.path.exists(f"/run/labyrinth/{run['prefix']}")
