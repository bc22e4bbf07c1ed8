"""Drive `labyrinth serve` as people would: OpenSSH clients with their own keys, each in a tmux window."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.waiting import wait_until

PEOPLE = ("presenter", "alice", "bob", "stranger")


def make_keys(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    keys = {}
    for who in PEOPLE:
        key = folder / who
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{who}@room", "-f", str(key)], check=True
        )
        keys[who] = key
    (folder / "presenters").write_text((folder / "presenter.pub").read_text())
    (folder / "audience").write_text((folder / "alice.pub").read_text() + (folder / "bob.pub").read_text())
    return keys


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    known_hosts: Path
    log: Path

    def text(self) -> str:
        return self.log.read_text()

    def ssh(self, key: Path, *extra: str) -> list[str]:
        return [
            "ssh",
            "-p",
            str(self.port),
            "-i",
            str(key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            *extra,
            "demo@127.0.0.1",
        ]

    def children(self, role: str) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid), "-f", "--", f"serve.child --role {role}"],
            capture_output=True,
        )
        return [int(pid) for pid in out.stdout.split()]


def _ignore_hangups() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what `nohup` does, inherited by every child


@contextmanager
def serve(tmp: Path, *options: str, nohup: bool = False) -> Iterator[Server]:
    """`labyrinth serve` on an ephemeral 127.0.0.1 port; its known_hosts line taken from what it printed.
    With `nohup`, started as `nohup labyrinth serve` would be: SIGHUP ignored, and so in its children."""
    log = tmp / "serve.log"
    env = {**os.environ, "LABYRINTH_CONFIG_DIR": str(tmp / "config")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "labyrinth_tui", "serve", "--listen", "127.0.0.1:0", *options],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            preexec_fn=_ignore_hangups if nohup else None,
        )
    try:
        wait_until(lambda: "known_hosts line" in log.read_text() or process.poll() is not None, timeout=20)
        text = log.read_text()
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
        assert found, text
        line = next(x.strip() for x in text.splitlines() if x.strip().startswith("[127.0.0.1]"))
        known = tmp / "known_hosts"
        known.write_text(line + "\n")
        yield Server(process, int(found.group(1)), known, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Tmux:
    base: list[str]

    def open(self, name: str, argv: list[str], width: int = 120, height: int = 40) -> None:
        command = " ".join(argv)
        subprocess.run(
            [
                *self.base,
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                str(width),
                "-y",
                str(height),
                "-e",
                "TERM=xterm-256color",
                command,
            ],
            check=True,
        )

    def screen(self, name: str) -> str:
        return subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", name], capture_output=True, text=True
        ).stdout

    def styled(self, name: str) -> str:
        """The screen with its colours: where a cursor is shows only there."""
        return subprocess.run(
            [*self.base, "capture-pane", "-e", "-p", "-t", name], capture_output=True, text=True
        ).stdout

    def keys(self, name: str, *keys: str) -> None:
        """One key per write, as typed: escape sequences of several keys in one read get lost."""
        for key in keys:
            subprocess.run([*self.base, "send-keys", "-t", name, key], check=True)

    def type(self, name: str, text: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", name, "-l", text], check=True)

    def wait(self, name: str, *texts: str, timeout: float = 20) -> str:
        try:
            wait_until(
                lambda: all(t in self.screen(name) for t in texts), timeout=timeout, what=" and ".join(texts)
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {name}'s screen:\n{self.screen(name)}") from exc
        return self.screen(name)

    def pane_pid(self, name: str) -> int:
        out = subprocess.run(
            [*self.base, "display", "-p", "-t", name, "#{pane_pid}"], capture_output=True, text=True
        )
        return int(out.stdout.strip())


@contextmanager
def tmux_server(tag: str) -> Iterator[Tmux]:
    if shutil.which("tmux") is None or shutil.which("ssh") is None:
        raise AssertionError("tmux and ssh are installed by `make setup`")
    base = ["tmux", "-L", f"labyrinth-{tag}-{os.getpid()}"]
    # a window whose ssh ended keeps its last screen (the server's parting line) to be read
    subprocess.run([*base, "new-session", "-d", "-s", "keep"], check=True)
    subprocess.run([*base, "set-option", "-g", "remain-on-exit", "on"], check=True)
    try:
        yield Tmux(base)
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, check=False)
