"""`lab down` leaves nothing, after kill -9 at any step of `up` and without state; foreign things survive."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import needs_root
from tests.integration.conftest import LABYRINTH, labyrinth, state_dir, unique_prefix

STEPS = ["namespaces", "links", "kube-proxy", "dns", "ssh keys", "sshd", "wait"]


def traces(prefix: str) -> dict[str, list[str]]:
    """Everything of a lab that could be left on the machine, looked up independently of the lab's code."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    mine = [ln.split()[0] for ln in netns.splitlines() if ln.startswith(f"{prefix}.")]
    procs = []
    run_dir = str(state_dir(prefix))
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if run_dir + "/" in cmdline:
            procs.append(f"{pid}: {cmdline}")
    files = [str(p) for p in Path("/etc/netns").glob(f"{prefix}.*")] if Path("/etc/netns").exists() else []
    if state_dir(prefix).exists():
        files.append(str(state_dir(prefix)))
    return {k: v for k, v in {"netns": mine, "processes": procs, "files": files}.items() if v}


@needs_root
@pytest.mark.parametrize("step", STEPS)
def test_kill_9_during_up_then_down_leaves_nothing(step: str) -> None:
    prefix = unique_prefix("k")
    try:
        crashed = subprocess.run(
            [*LABYRINTH, "lab", "up", "--prefix", prefix],
            env={**os.environ, "LABYRINTH_CRASH_AT": step},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crashed.returncode == -9, crashed.stderr
        if step != "namespaces":
            assert traces(prefix), "the crash should have left something to clean"
        down = labyrinth("lab", "down", "--prefix", prefix)
        assert "removed" in down.stdout
        assert traces(prefix) == {}
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@needs_root
def test_down_without_state_and_foreign_namespaces_survive() -> None:
    prefix = unique_prefix("s")
    foreign = [f"{prefix}x-foreign", f"{prefix}-lookalike", f"x{prefix}.node-1"]
    try:
        for name in foreign:
            subprocess.run(["ip", "netns", "add", name], check=True)
        labyrinth("lab", "up", "--prefix", prefix)
        (state_dir(prefix) / "state.json").unlink()  # the state file is gone: down must still find everything
        down = labyrinth("lab", "down", "--prefix", prefix)
        assert "10 netns" in down.stdout and "1 bpffs" in down.stdout  # 3 of them lxc_health's
        assert traces(prefix) == {}
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        for name in foreign:
            assert name in listed
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)
        for name in foreign:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@needs_root
def test_without_root_a_clear_error_and_no_traceback() -> None:
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is installed by `make setup`")
    out = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            *LABYRINTH,
            "lab",
            "up",
            "--prefix",
            "tnoroot",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert "needs root" in out.stderr
    assert "Traceback" not in out.stderr


@needs_root
def test_down_during_a_live_capture_leaves_no_capture_folder() -> None:
    from tests.fakes.waiting import wait_until

    prefix = unique_prefix("w")
    before = set(Path("/tmp").glob(f"labyrinth-cap-{prefix}-*"))
    capture = None
    try:
        labyrinth("lab", "up", "--prefix", prefix)
        capture = subprocess.Popen(
            [*LABYRINTH, "capture", "--prefix", prefix, "node-1", "ens4"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: bool(set(Path("/tmp").glob(f"labyrinth-cap-{prefix}-*")) - before), 20, "a capture folder"
        )
        down = labyrinth("lab", "down", "--prefix", prefix)
        assert "capture_dirs" in down.stdout
        assert set(Path("/tmp").glob(f"labyrinth-cap-{prefix}-*")) - before == set()
        assert traces(prefix) == {}
    finally:
        if capture is not None:
            capture.kill()
            capture.wait()
        labyrinth("lab", "down", "--prefix", prefix, check=False)


@needs_root
def test_down_removes_capture_folders_no_process_names_and_only_those() -> None:
    """An app killed between ending a capture and removing its folder leaves one that no watcher
    names: `lab down` removes it, and a fresh one too (every process of the lab is ended by then, so a
    capture that was starting cannot go on) — but not a folder a live process still names, nor another
    lab's."""
    import secrets
    import time

    prefix = unique_prefix("o")

    def folder(lab: str = prefix) -> Path:
        path = Path(f"/tmp/labyrinth-cap-{lab}-{secrets.token_hex(6)}")
        path.mkdir(mode=0o700)
        (path / "run-0000.pcap").write_bytes(b"")
        return path

    orphan, in_use, fresh, other_lab = folder(), folder(), folder(), folder(prefix + "x")
    old = time.time() - 60
    for path in (orphan, in_use, other_lab):
        os.utime(path, (old, old))
    user = subprocess.Popen(["sh", "-c", "sleep 30", str(in_use / "run-0000.pcap")])
    try:
        down = labyrinth("lab", "down", "--prefix", prefix)
        assert not orphan.exists() and "capture_dirs" in down.stdout
        assert in_use.exists() and not fresh.exists()
        assert other_lab.exists(), "another lab's orphan is that lab's to sweep"
    finally:
        user.kill()
        user.wait()
        for path in (orphan, in_use, fresh, other_lab):
            shutil.rmtree(path, ignore_errors=True)
