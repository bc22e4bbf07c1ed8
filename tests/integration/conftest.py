"""Integration fixtures: a real lab with a unique prefix, always torn down, and helpers to run in it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import IS_ROOT, ROOT
from tests.fakes.kube_api import KubeApiStub
from tests.fakes.kube_lab import LabCluster
from tests.fakes.waiting import wait_until

LABYRINTH = [sys.executable, "-m", "labyrinth_tui"]


def labyrinth(*args: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LABYRINTH, *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
        **kwargs,  # type: ignore[call-overload]
    )


def unique_prefix(tag: str) -> str:
    # LABYRINTH_TEST_PREFIX: a machine shared by several people gives each one a prefix of their own
    return f"{os.environ.get('LABYRINTH_TEST_PREFIX', 't')}{tag}{os.getpid() % 100000}"


@pytest.fixture(scope="module")
def lab_prefix() -> Iterator[str]:
    """A lab built by the real CLI for this module, removed afterwards even if a test fails.

    Its datapath is kube-proxy's iptables: these tests watch kube-proxy's counters move (the ebpf
    datapath, the default, has its own tests in test_lab_ebpf.py)."""
    if not IS_ROOT:
        pytest.skip("NEEDS ROOT: the lab builds network namespaces. CI runs as root; run `sudo make test`.")
    prefix = unique_prefix("m")
    try:
        labyrinth("lab", "up", "--prefix", prefix, "--datapath", "iptables")
        yield prefix
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@pytest.fixture(scope="module")
def lab_state(lab_prefix: str) -> dict[str, object]:
    import json

    out = labyrinth("lab", "status", "--prefix", lab_prefix, "--json")
    state: dict[str, object] = json.loads(out.stdout)
    return state


def state_dir(prefix: str) -> Path:
    return Path("/run/labyrinth") / prefix


ARTICLE_SERVER = "node-wrk-2-ubuntu24"


def article_exchange(prefix: str) -> None:
    """The article's nc pair in lab `prefix`: node-wrk-1 connects to node-wrk-2's ncat by its service name."""
    listener = subprocess.Popen(
        [
            *LABYRINTH,
            "lab",
            "exec",
            "--prefix",
            prefix,
            ARTICLE_SERVER,
            "--",
            "ncat",
            "-l",
            "0.0.0.0",
            "9999",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: (
                labyrinth(
                    "lab",
                    "exec",
                    "--prefix",
                    prefix,
                    "node-wrk-1",
                    "--",
                    "ncat",
                    f"{ARTICLE_SERVER}.wrk-2",
                    "9999",
                    input="hello\n",
                    check=False,
                ).returncode
                == 0
            ),
            timeout=10,
            what="the ncat client to connect",
        )
    finally:
        listener.kill()
        listener.wait()


def handshake_path(report: dict[str, Any], step: str) -> list[tuple[str, str]]:
    """(node, interface) of each hop a handshake step ("syn", "syn_ack") crossed, from a journey's JSON."""
    return [(h["node"], h["interface"]) for h in report["handshake"][step]["hops"]]


def overlay_path(
    client_node: str, client_veth: str, server_node: str, server_veth: str
) -> list[tuple[str, str]]:
    """The six hops the article followed from a pod on one node to a pod on another over VXLAN."""
    return [
        (client_node, client_veth),
        (client_node, "cilium_vxlan"),
        (client_node, "ens4"),
        (server_node, "ens4"),
        (server_node, "cilium_vxlan"),
        (server_node, server_veth),
    ]


async def journey_cli(work: Path, status: dict[str, Any], inventory: str) -> tuple[int, str, str]:
    """`labyrinth journey --json` from wrk-1's pod to the article's service, as a person types it, on the
    lab attached as a cluster: the stub API serves `status` (`lab status --json`), SSH per `inventory`.
    Returns the exit status, stdout and stderr."""
    client = next(p for p in status["pods"] if p["namespace"] == "wrk-1")
    (work / "inventory.yaml").write_text(inventory)
    async with KubeApiStub(work / "pki-cli", model=LabCluster(status)) as api:
        (work / "cli.conf").write_text(yaml.safe_dump(api.admin_conf()))
        proc = await asyncio.create_subprocess_exec(
            *LABYRINTH, "journey", "--json",
            "--kubeconfig", str(work / "cli.conf"), "--ssh-inventory", str(work / "inventory.yaml"),
            "--from", f"wrk-1/{client['name']}", "--to", "node-wrk-2-ubuntu24.wrk-2:9999",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel, once per run, as `pip wheel` builds it for an install elsewhere."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(dist.glob("labyrinth_tui-*.whl"))
