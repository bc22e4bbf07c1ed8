"""The real app in tmux on the real lab, driven as a person would: the tree shows pods, a stream packets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labyrinth_tui.lab.netns import pids_in
from tests.conftest import ROOT, needs_root
from tests.fakes.waiting import wait_until
from tests.integration.conftest import article_exchange, labyrinth, unique_prefix


@pytest.fixture
def tmux() -> Iterator[list[str]]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is installed by `make setup`")
    socket = f"labyrinth-test-{os.getpid()}"
    cmd = ["tmux", "-L", socket]
    try:
        yield cmd
    finally:
        subprocess.run([*cmd, "kill-server"], capture_output=True, check=False)


def wait_screen(tmux: list[str], *texts: str, timeout: float = 10) -> str:
    """Wait until the screen shows every text; fail showing the screen as it was."""
    try:
        wait_until(lambda: all(t in screen(tmux) for t in texts), timeout=timeout, what=" and ".join(texts))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the screen:\n{screen(tmux)}") from exc
    return screen(tmux)


def screen(tmux: list[str]) -> str:
    return subprocess.run([*tmux, "capture-pane", "-p", "-t", "app"], capture_output=True, text=True).stdout


def start_app(tmux: list[str], prefix: str, width: int, height: int) -> None:
    """`labyrinth tui --prefix` in a detached tmux session named app, of width × height cells."""
    # COLUMNS/LINES from pytest's environment would pin the app at 80×24 whatever the window is
    argv = [sys.executable, "-m", "labyrinth_tui", "tui", "--prefix", prefix]
    app = " ".join(["env", "-u", "COLUMNS", "-u", "LINES", *argv])
    size = ["-x", str(width), "-y", str(height)]
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "app", *size, "-c", str(ROOT), "-e", "TERM=xterm-256color", app],
        check=True,
    )


def keys(tmux: list[str], *names: str, literal: bool = False) -> None:
    subprocess.run([*tmux, "send-keys", "-t", "app", *(["-l"] if literal else []), *names], check=True)


def details(tmux: list[str]) -> str:
    """The Details pane's lines (bottom left, under the tree), as the screen shows them."""
    lines = screen(tmux).splitlines()
    top = next((i for i, ln in enumerate(lines) if "─ Details ─" in ln), len(lines))
    return "\n".join(ln.split("│")[1] if ln.count("│") >= 2 else "" for ln in lines[top + 1 :])


@needs_root
def test_tree_and_a_live_stream_in_tmux(tmux: list[str]) -> None:
    prefix = unique_prefix("x")
    # this lab's capture folders only (they carry its prefix): other labs on the machine make their own
    mine = f"labyrinth-cap-{prefix}-*"
    folders_before = set(Path("/tmp").glob(mine))
    try:
        start_app(tmux, prefix, 160, 45)
        text = wait_screen(tmux, "wrk-1/node-wrk", f"lab {prefix}", timeout=30)
        assert "node-2" in text and "kube-system/co" in text and "↔ eth0" in text

        # open the client pod's lxc stream through the command palette, as a user would
        subprocess.run([*tmux, "send-keys", "-t", "app", "C-p"], check=True)
        wait_screen(tmux, "Search for commands")
        subprocess.run([*tmux, "send-keys", "-t", "app", "-l", "Open stream node-1 · lxc"], check=True)
        wait_screen(tmux, "Open stream node-1 · lxc")
        subprocess.run([*tmux, "send-keys", "-t", "app", "Enter"], check=True)
        wait_screen(tmux, "● node-1", timeout=20)

        article_exchange(prefix)
        text = wait_screen(tmux, "[SYN]")
        assert "10.0.1.15 → 10.105.134.33" in text  # the ClusterIP, before kube-proxy's DNAT
        assert "10.0.1.15 → 10.96.0.10" in text  # the DNS walk, to kube-dns's ClusterIP

        # Enter on the live stream's newest packet: tshark on node-1 dissects it while capture goes on
        subprocess.run([*tmux, "send-keys", "-t", "app", "Enter"], check=True)
        text = wait_screen(tmux, "Dissection", "bytes on wire", "0000  ", timeout=20)  # tree and bytes
        assert "not recorded" not in text and "failed" not in text
        subprocess.run([*tmux, "send-keys", "-t", "app", "Escape"], check=True)
        wait_screen(tmux, "● node-1")

        subprocess.run([*tmux, "send-keys", "-t", "app", "q"], check=True)
        nodes = [f"{prefix}.node-{i}" for i in range(3)]

        def no_capture_left() -> bool:
            comms = []
            for pids in pids_in(nodes).values():
                for pid in pids:
                    try:
                        comms.append(Path(f"/proc/{pid}/comm").read_text().strip())
                    except OSError:
                        continue  # it ended between the listing and the read
            return not any(c in ("tshark", "tcpdump", "dumpcap") or c.startswith("python3") for c in comms)

        wait_until(no_capture_left, timeout=15, what="no tshark/dumpcap left on the nodes after quit")

        def app_exited() -> bool:
            return subprocess.run([*tmux, "has-session", "-t", "app"], capture_output=True).returncode != 0

        wait_until(app_exited, timeout=15, what="the app to exit after q")
        assert set(Path("/tmp").glob(mine)) - folders_before == set(), "capture folders left"
    finally:
        subprocess.run([*tmux, "kill-session", "-t", "app"], capture_output=True, check=False)
        labyrinth("lab", "down", "--prefix", prefix, check=False)
        # after a failure above, the app may have died between ending a capture and removing its
        # folder: the assertion above is the product's check; this keeps the machine clean regardless
        for left in set(Path("/tmp").glob(mine)) - folders_before:
            shutil.rmtree(left, ignore_errors=True)


@needs_root
def test_a_classic_tc_lab_in_tmux_lists_an_lxcs_tc_program_and_its_journeys_dnat_is_ebpf(
    tmux: list[str],
) -> None:
    prefix = unique_prefix("c")
    try:
        labyrinth("lab", "up", "--prefix", prefix, "--bpf-attach", "tc")
        start_app(tmux, prefix, 220, 50)  # wide enough for a hop's evidence on one line
        wait_screen(tmux, "wrk-1/node-wrk", f"lab {prefix}", timeout=30)

        # down the tree to the client pod's lxc: the lab, node-0, its pods (none) and interfaces, node-1,
        # its pods, the pod, its netns, its lxc
        keys(tmux, "t")
        keys(tmux, "Home", *["Down"] * 8)
        wait_until(
            lambda: all(t in details(tmux) for t in ("interface lxc", "on node-1", "cil_from_container")),
            timeout=10,
            what="the details of node-1's lxc with its program",
        )
        shown = details(tmux)
        assert "interface lxc" in shown and "on node-1" in shown, shown
        # its program is a classic tc filter (clsact), read from the kernel: no tcx link in this lab
        assert re.search(r"^ tc +cil_from_container  prog \d+  ingress", shown, re.M), shown
        assert "tcx" not in shown

        keys(tmux, "j")
        wait_screen(tmux, "Follow a packet from wrk-1/node-wrk-1")
        keys(tmux, "node-wrk-2-ubuntu24.wrk-2:9999", literal=True)
        keys(tmux, "Enter")
        text = wait_screen(tmux, "SYN-ACK", "0 packets — bypassed", timeout=60)
        dnat = next(ln for ln in text.splitlines() if "DNAT 10.105.134.33:9999 → 10.0.2.215:9999" in ln)
        assert "node-1 cilium_vxlan" in dnat and "eBPF cil_from_container on node-1/lxc" in dnat, text
        assert "kube-proxy KUBE-SERVICES → KUBE-SVC-IWPXKGE4TAJJE4GD" in text
        assert "(DNAT): 0 packets — bypassed" in text
        assert "eBPF tc/ingress cil_from_container" in text and "tcx/" not in text
    finally:
        subprocess.run([*tmux, "kill-session", "-t", "app"], capture_output=True, check=False)
        labyrinth("lab", "down", "--prefix", prefix, check=False)
