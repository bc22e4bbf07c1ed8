"""`labyrinth serve` with the real OpenSSH client in tmux: a presenter drives a replay, two viewers follow."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE
from labyrinth_tui.sources.follow import HARD_LIMIT
from tests.fakes.busy_bundle import write_busy_bundle
from tests.fakes.serve_harness import Server, Tmux, make_keys, serve, tmux_server
from tests.fakes.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    return make_keys(tmp_path / "keys")


def replay_server(tmp_path: Path, *extra: str, nohup: bool = False) -> object:
    folder = tmp_path / "keys"
    return serve(
        tmp_path,
        "--presenter-keys",
        str(folder / "presenters"),
        "--audience-keys",
        str(folder / "audience"),
        "--replay",
        str(ARTICLE_BUNDLE),
        "--speed",
        "0",
        *extra,
        nohup=nohup,
    )


def open_lxc_stream(tmux: Tmux, who: str) -> None:
    tmux.keys(who, "C-p")
    tmux.wait(who, "Search for commands")
    tmux.type(who, "Open stream node-1 · lxc1ba")
    tmux.wait(who, "Open stream node-1 · lxc1ba")
    tmux.keys(who, "Enter")


def tree_part(styled: str) -> str:
    """The left column of the screen with its colours: the tree, its cursor and the details."""
    return "\n".join(line[:200] for line in styled.splitlines()[1:-1])


def test_presenter_drives_two_viewers_follow(tmp_path: Path, keys: dict[str, Path]) -> None:
    with replay_server(tmp_path) as server, tmux_server("sv-follow") as tmux:  # type: ignore[attr-defined]
        assert isinstance(server, Server)
        tmux.open("presenter", server.ssh(keys["presenter"], "-tt"))
        tmux.open("alice", server.ssh(keys["alice"], "-tt"), width=100, height=30)
        tmux.open("bob", server.ssh(keys["bob"], "-tt"), width=140, height=45)
        tmux.wait("presenter", "presenting", "wrk-1/node-wrk", "j Journey")
        for viewer in ("alice", "bob"):
            screen = tmux.wait(viewer, "following the presenter", "wrk-1/node-wrk")
            assert "Journey" not in screen and "Export" not in screen  # absent from a viewer's keys

        open_lxc_stream(tmux, "presenter")
        tmux.wait("presenter", "10.105.134.33", "node-1")
        for viewer in ("alice", "bob"):
            tmux.wait(viewer, "10.105.134.33", "stopped: end of recording")

        # a viewer's j, x and enter on an interface do nothing to the source
        tmux.keys("alice", "j")
        tmux.keys("alice", "x")
        tmux.keys("alice", "t")
        wait_until(lambda: "Packet detail" not in tmux.screen("alice"), timeout=10, what="the tree focused")
        for _ in range(8):  # one key at a time, each seen to move the tree's cursor
            before = tree_part(tmux.styled("alice"))
            tmux.keys("alice", "Down")
            wait_until(lambda b=before: tree_part(tmux.styled("alice")) != b, timeout=10, what="a move")  # type: ignore[misc]
        tmux.wait("alice", "interface lxc1ba60d50596c on node-1")
        tmux.keys("alice", "Enter")
        tmux.wait("alice", "follow mode: the presenter opens the captures")
        presenter = tmux.screen("presenter")
        assert presenter.count("● ") + presenter.count("■ ") == 1, presenter  # still its one stream
        assert "search walk" not in presenter and "search walk" not in tmux.screen("alice")
        assert "10.105.134.33" in tmux.screen("alice")  # x did not close the presenter's stream here

        # the presenter's cursor is named in the viewers' header; the journey appears on their screens
        tmux.keys("presenter", "t")
        wait_until(
            lambda: "Packet detail" not in tmux.screen("presenter"), timeout=10, what="the tree focused"
        )
        tmux.keys("presenter", "Down")
        tmux.wait("bob", "on ▣ node-0")
        tmux.keys("presenter", "j")
        for viewer in ("alice", "bob", "presenter"):
            tmux.wait(viewer, "search walk", "SYN")
        text = server.text()
        assert "+ presenter presenter@room (SHA256:" in text and "+ viewer alice@room" in text


def test_resize_relays_out_and_a_killed_ssh_leaves_nothing(tmp_path: Path, keys: dict[str, Path]) -> None:
    with replay_server(tmp_path) as server, tmux_server("sv-resize") as tmux:  # type: ignore[attr-defined]
        assert isinstance(server, Server)
        tmux.open("alice", server.ssh(keys["alice"], "-tt"), width=120, height=40)
        tmux.wait("alice", "following the presenter")
        # the title comes first; the panes are laid out at 120 columns a frame or two later
        wait_until(
            lambda: max(len(line.rstrip()) for line in tmux.screen("alice").splitlines()) > 100,
            timeout=10,
            what="alice's screen laid out at 120 columns",
        )
        subprocess.run([*tmux.base, "resize-window", "-t", "alice", "-x", "80", "-y", "24"], check=True)
        wait_until(lambda: tmux.screen("alice").splitlines()[0].rstrip().endswith("presenter"), timeout=10)
        wait_until(lambda: max(len(x.rstrip()) for x in tmux.screen("alice").splitlines()) <= 80, timeout=10)
        wait_until(
            lambda: "q Quit" in tmux.screen("alice").splitlines()[23], timeout=10, what="the footer at row 24"
        )

        (child,) = server.children("viewer")
        ptys_before = os.listdir(f"/proc/{server.process.pid}/fd")
        ssh_pid = int(
            subprocess.run(["pgrep", "-P", str(tmux.pane_pid("alice")), "ssh"], capture_output=True).stdout
            or b"0"
        ) or tmux.pane_pid("alice")
        os.kill(ssh_pid, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{child}").exists(), timeout=10, what="the viewer's app to end")
        wait_until(lambda: "- viewer alice@room" in server.text(), timeout=10)
        # the server says the viewer left as it closes the viewer's pty: wait for the close itself
        wait_until(
            lambda: "/dev/ptmx" not in open_files(server.process.pid),
            timeout=10,
            what="the server to close the viewer's pty",
        )
        assert len(os.listdir(f"/proc/{server.process.pid}/fd")) < len(ptys_before)


def open_files(pid: int) -> list[str]:
    """What each of pid's file descriptors points to; one closed while we look is left out."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            found.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return found


def refused(
    server: Server, key: Path, *options: str, command: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*server.ssh(key, *options), *command],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_nothing_else_over_that_port(tmp_path: Path, keys: dict[str, Path]) -> None:
    with replay_server(tmp_path) as server, tmux_server("sv-refuse") as tmux:  # type: ignore[attr-defined]
        assert isinstance(server, Server)
        shell = refused(server, keys["alice"], command=("sh", "-c", "id"))
        assert shell.returncode != 0 and "exec request failed" in shell.stderr and "uid=" not in shell.stdout
        sftp = subprocess.run(
            [*server.ssh(keys["alice"])[:-1], "-s", "demo@127.0.0.1", "sftp"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert "subsystem request failed" in sftp.stderr
        no_pty = refused(server, keys["alice"], "-T")
        assert "connect with a terminal (ssh -t)" in no_pty.stdout
        stranger = refused(server, keys["stranger"], command=("true",))
        assert "Permission denied (publickey)" in stranger.stderr
        password = subprocess.run(
            [
                "ssh",
                "-p",
                str(server.port),
                "-o",
                f"UserKnownHostsFile={server.known_hosts}",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
                "-o",
                "BatchMode=yes",
                "demo@127.0.0.1",
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert "Permission denied (publickey)" in password.stderr

        # -L: the tunnel is asked for when something connects through it, and the server says no
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            local = probe.getsockname()[1]
        forward = subprocess.Popen(
            [*server.ssh(keys["alice"], "-N", "-L", f"127.0.0.1:{local}:127.0.0.1:{server.port}")],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: "forwarding" not in server.text() and _connects(local), timeout=15)
            with socket.create_connection(("127.0.0.1", local)) as through:
                through.settimeout(10)
                assert through.recv(100) == b""  # closed at once: no SSH banner came through
            wait_until(lambda: "refused: forwarding to 127.0.0.1" in server.text(), timeout=10)
        finally:
            forward.kill()  # ssh -N has said what it had to on stderr by now
            _, err = forward.communicate(timeout=10)
        assert "administratively prohibited" in err

        # -A: the agent is not forwarded (the request is refused; the app gets no SSH_AUTH_SOCK)
        tmux.open("alice", server.ssh(keys["alice"], "-tt", "-A", "-o", "SetEnv=COLORTERM=truecolor"))
        tmux.wait("alice", "following the presenter")
        (child,) = server.children("viewer")
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        assert not any(v.startswith(b"SSH_AUTH_SOCK=") for v in environ)
        # the client's own terminal type and colour depth reach the app (tmux's TERM inside tmux)
        assert b"TERM=tmux-256color" in environ and b"COLORTERM=truecolor" in environ, environ


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_limits_full_room_idle_and_rate(tmp_path: Path, keys: dict[str, Path]) -> None:
    with (
        replay_server(tmp_path, "--max-viewers", "1", "--idle-timeout", "2", "--rate-limit", "2") as server,
        tmux_server("sv-limits") as tmux,
    ):  # type: ignore[attr-defined]
        assert isinstance(server, Server)
        tmux.open("alice", server.ssh(keys["alice"], "-tt"))
        tmux.wait("alice", "following the presenter")
        full = refused(server, keys["bob"], "-tt")
        assert "the room is full (1 viewers)" in full.stdout
        tmux.wait("alice", "no key pressed for", timeout=15)  # idle: disconnected with a line
        assert "idle viewer alice@room" in server.text()
        third = refused(server, keys["bob"], "-tt")  # the room is free again, but not for a third try
        assert "too many connections from your address" in third.stderr, third


def test_stopping_the_server_ends_every_app_even_under_nohup(tmp_path: Path, keys: dict[str, Path]) -> None:
    """`nohup labyrinth serve &`, then stopped while an idle viewer is being disconnected: no app stays."""
    with (
        replay_server(tmp_path, "--idle-timeout", "2", nohup=True) as server,
        tmux_server("sv-nohup") as tmux,
    ):  # type: ignore[attr-defined]
        assert isinstance(server, Server)
        tmux.open("alice", server.ssh(keys["alice"], "-tt"))
        tmux.wait("alice", "following the presenter")
        apps = server.children("viewer")
        assert len(apps) == 1, apps
        tmux.wait("alice", "no key pressed for", timeout=15)  # her app is being ended: stop the server now
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(10) == 0, server.text()

    def alive() -> list[int]:
        return [pid for pid in apps if Path(f"/proc/{pid}").exists()]

    try:
        wait_until(lambda: not alive(), timeout=5, what="every app to end with the server")
    finally:
        for pid in alive():  # the server's own apps, by the pids it had: a failed run leaves nothing
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def packets_shown(screen: str) -> int:
    found = re.search(r"(\d[\d,]*) pkts", screen)
    return int(found.group(1).replace(",", "")) if found else 0


def test_a_stopped_viewer_costs_the_presenter_nothing(tmp_path: Path, keys: dict[str, Path]) -> None:
    bundle = write_busy_bundle(tmp_path / "busy", rate=5_000, seconds=40)
    folder = tmp_path / "keys"
    options = ("--presenter-keys", str(folder / "presenters"), "--audience-keys", str(folder / "audience"))
    with serve(tmp_path, *options, "--replay", str(bundle)) as server, tmux_server("sv-slow") as tmux:
        tmux.open("presenter", server.ssh(keys["presenter"], "-tt"))
        tmux.open("alice", server.ssh(keys["alice"], "-tt"))
        tmux.wait("alice", "following the presenter", "wrk-1/node-wrk")
        open_lxc_stream(tmux, "presenter")
        tmux.wait("alice", "pkts")
        ssh_pid = int(
            subprocess.run(["pgrep", "-P", str(tmux.pane_pid("alice"))], capture_output=True).stdout or 0
        )
        alice_ssh = ssh_pid or tmux.pane_pid("alice")
        hub_before = rss_kb(server.process.pid)
        os.kill(alice_ssh, signal.SIGSTOP)
        try:
            start = packets_shown(tmux.screen("presenter"))
            for step in range(1, 5):  # 4 × 5k packets while alice reads nothing: the presenter goes on
                wait_until(
                    lambda step=step: packets_shown(tmux.screen("presenter")) > start + step * 5_000,  # type: ignore[misc]
                    timeout=10,
                    what="the presenter's count to go on",
                )
            hub_growth = rss_kb(server.process.pid) - hub_before
        finally:
            os.kill(alice_ssh, signal.SIGCONT)
        # what alice could not read waits in a bounded buffer, the rest is counted (≈ 20k packets ≈ 6 MB)
        assert hub_growth < (HARD_LIMIT >> 10) + 8_192, f"the hub grew {hub_growth} kB"
        # alice, let go, catches up with the live stream (or is told what was not shown)
        wait_until(
            lambda: (
                packets_shown(tmux.screen("alice")) >= packets_shown(tmux.screen("presenter")) - 10_000
                or "not shown" in tmux.screen("alice")
            ),
            timeout=20,
            what="alice to catch up",
        )


def test_the_presenters_tour_is_shown_as_a_tour_to_viewers(tmp_path: Path, keys: dict[str, Path]) -> None:
    with replay_server(tmp_path) as server, tmux_server("sv-tour") as tmux:  # type: ignore[attr-defined]
        assert isinstance(server, Server)
        tmux.open("presenter", server.ssh(keys["presenter"], "-tt"))
        tmux.open("alice", server.ssh(keys["alice"], "-tt"), width=100, height=30)
        tmux.wait("presenter", "presenting", "wrk-1/node-wrk")
        tmux.wait("alice", "following the presenter", "wrk-1/node-wrk")
        tmux.keys("presenter", "u")
        tmux.wait("presenter", "7/7 steps passed")
        tmux.wait("alice", "7/7 steps passed", "✓ the DNS search walk")
        # one screen: leaving the tour is back on the tree, not on a journey screen shown under it
        tmux.keys("alice", "Escape")
        # the terminal is redrawn row by row: wait until no row of the tour (nor a journey screen's
        # footer) is left, not only its title; a journey screen under the tour would keep "esc Back"
        wait_until(
            lambda: not any(t in tmux.screen("alice") for t in ("steps passed", "search walk", "esc Back")),
            timeout=10,
            what="the tour to close, back on the tree",
        )
        screen = tmux.wait("alice", "following the presenter", "wrk-1/node-wrk", "Topology")
        assert "search walk" not in screen and "esc Back" not in screen, screen
        # a late joiner is shown the tour the presenter shows
        tmux.open("bob", server.ssh(keys["bob"], "-tt"))
        tmux.wait("bob", "7/7 steps passed")
