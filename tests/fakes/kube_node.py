"""FakeVm: the nodes engineer's FakeNode (real SSH on 127.0.0.1) as a fresh Ubuntu VM for bootstrap tests.

Commands are answered the way sudo and a shell would on the VM, inside the node's sandbox root
(see node_sandbox): `sudo -n` and `env K=V` are honoured, `install -d`, `dd of=`, `cat` act on files
under the root, `bash SCRIPT` runs the uploaded script for real with fake system commands, anything
else runs the fake command of that name (kubeadm, kubectl…). The process-group wrapper of
`NodeSession.stream` is understood (the pgid is real; its stop's `sh -c … PGID` ends the group).
`sh -s` (discovery's batched script) answers with `discovery_output`, a real node's output. A
direct-tcpip request for an address in `forwards` (node-0's 10.168.0.2:6443) is relayed to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from tests.fakes.node_sandbox import AS_NOBODY, NOBODY, ClusterSandbox
from tests.fakes.ssh_server import FakeNode, _Server

DISCOVERY_MARKER = "=LABYRINTH-0123456789abcdef="  # the marker of tests/fakes/data/discovery_node2.txt


@dataclass(frozen=True)
class Exec:
    """One command the VM received, after sudo/env were taken off."""

    at: float
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    sudo: bool = False
    stdin: str = ""


class _VmServer(_Server):
    node: FakeVm

    async def _serve(self, proc: asyncssh.SSHServerProcess[str]) -> None:
        status = 0
        try:
            self.node.commands.append(proc.command or "")
            status = await self.node.dispatch(proc)
        except Exception as exc:  # a fake's own bug must show, not hang the client
            proc.stderr.write(f"fake VM: {type(exc).__name__}: {exc}\n")
            status = 255
        finally:
            self.sessions -= 1
            self.node.open_sessions -= 1
            self.node.changed()
        proc.exit(status)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> Any:
        target = self.node.forwards.get((dest_host, dest_port))
        if target is None or self.conn is None:
            return False
        self.node.forwarded.append((dest_host, dest_port))
        return self.conn.forward_connection(*target)


class FakeVm(FakeNode):
    def __init__(self, tmp: Path, name: str, internal_ip: str, sandbox: ClusterSandbox) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        super().__init__(tmp)
        self.name = name
        self.internal_ip = internal_ip
        self.sandbox = sandbox
        self.root = sandbox.node_root(name)
        self.execs: list[Exec] = []
        self.forwards: dict[tuple[str, int], tuple[str, int]] = {}
        self.forwarded: list[tuple[str, int]] = []
        self._groups: dict[int, asyncio.subprocess.Process] = {}
        self.discovery_output: str | None = None  # what `sh -s` (discovery) prints, marked DISCOVERY_MARKER
        self.sudo_password = False  # True: `sudo -n` refuses as sudo 1.9 does for a login that needs one

    async def start(self) -> FakeVm:
        # FakeNode.start with our server class: the same relay, the same session accounting
        self._server = await asyncssh.create_server(
            lambda: _VmServer(self), "127.0.0.1", 0, server_host_keys=[self.host_key], encoding="utf-8"
        )
        backend = self._server.sockets[0].getsockname()[1]
        self._relay = await asyncio.start_server(lambda r, w: self._accept(r, w, backend), "127.0.0.1", 0)
        self.port = self._relay.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for proc in list(self._groups.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # only the groups this fake started
        await super().close()

    def _own(self, path: Path) -> None:
        """What root made on the VM belongs to the sandbox's root: `nobody` when the tests run as root."""
        if not AS_NOBODY:
            return
        while path != self.root and self.root in path.parents:
            os.chown(path, NOBODY, NOBODY)
            path = path.parent

    def path(self, remote: str) -> Path:
        return self.root / remote.lstrip("/")

    def runs_of(self, name: str) -> list[Exec]:
        return [e for e in self.execs if e.argv and e.argv[0] == name]

    async def dispatch(self, proc: asyncssh.SSHServerProcess[str]) -> int:
        argv = shlex.split(proc.command or "")
        grouped = argv[:4] == ["setsid", "-w", "sh", "-c"]
        if grouped:
            argv = argv[6:]  # after: sh -c 'printf …; exec "$@"' sh
        sudo = argv[:2] == ["sudo", "-n"]
        if sudo and self.sudo_password:
            await proc.stdin.read()  # what a real node's pipe takes in before sudo exits
            proc.stderr.write("sudo: a password is required\n")
            return 1
        if sudo:
            argv = argv[2:]
        env: dict[str, str] = {}
        if argv and argv[0] == "env":
            argv = argv[1:]
            while argv and "=" in argv[0] and not argv[0].startswith("-"):
                key, value = argv.pop(0).split("=", 1)
                env[key] = value
        stdin = ""
        if argv and argv[0] == "dd":
            stdin = await proc.stdin.read()
        self.execs.append(Exec(time.time(), tuple(argv), env, sudo, stdin))
        if not argv:
            return 0
        cmd = argv[0]
        if cmd == "install" and argv[1] == "-d":
            self.path(argv[-1]).mkdir(parents=True, exist_ok=True)
            os.chmod(self.path(argv[-1]), int(argv[argv.index("-m") + 1], 8))
            self._own(self.path(argv[-1]))
            return 0
        if cmd == "dd":
            target = self.path(argv[1].removeprefix("of="))
            target.write_text(stdin)
            self._own(target)
            return 0
        if cmd == "cat":
            try:
                proc.stdout.write(self.path(argv[1]).read_text())
                return 0
            except FileNotFoundError:
                proc.stderr.write(f"cat: {argv[1]}: No such file or directory\n")
                return 1
        if cmd == "kill":  # NodeSession.stream's stop: `kill -TERM -- -PGID`, exit 1 when none is left
            group = self._groups.get(abs(int(argv[-1])))
            if group is None:
                proc.stderr.write(f"kill: ({argv[-1]}) - No such process\n")
                return 1
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group.pid, getattr(signal, "SIG" + argv[1].lstrip("-")))
            return 0
        if argv == ["sh", "-s"]:  # discovery's batched script: the canned output of a real node, if any
            script = await proc.stdin.read()
            marker = re.search(r"=LABYRINTH-[0-9a-f]{16}=", script)
            if self.discovery_output is not None and marker is not None:
                proc.stdout.write(self.discovery_output.replace(DISCOVERY_MARKER, marker.group(0)))
            return 0
        if cmd == "sh" and argv[1] == "-c" and len(argv) >= 5 and argv[4].isdigit():
            # NodeSession.stream's stop: a small script that ends group PGID (TERM, then KILL) and waits
            group = self._groups.get(int(argv[4]))
            if group is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group.pid, signal.SIGTERM)
                await group.wait()
            return 0
        if cmd == "bash":
            argv = ["bash", str(self.path(argv[1])), *argv[2:]]
        elif not (self.sandbox.bin / cmd).exists():
            proc.stderr.write(f"{cmd}: command not found\n")
            return 127
        return await self._run(proc, argv, env, grouped)

    async def _run(
        self, proc: asyncssh.SSHServerProcess[str], argv: list[str], env: dict[str, str], grouped: bool
    ) -> int:
        child = await self.sandbox.start(self.name, argv, env)
        assert child.stdout is not None and child.stderr is not None
        self._groups[child.pid] = child
        try:
            if grouped:
                proc.stdout.write(f"{child.pid}\n")

            async def pump(src: asyncio.StreamReader, dst: Any) -> None:
                while line := await src.readline():
                    dst.write(line.decode())

            await asyncio.gather(pump(child.stdout, proc.stdout), pump(child.stderr, proc.stderr))
            status = await child.wait()
        finally:
            self._groups.pop(child.pid, None)
        return status if status >= 0 else 128 - status
