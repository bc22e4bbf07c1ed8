"""NodeSandbox: where the real node scripts run in tests — fake system commands, a private root, as nobody.

Each node gets a directory that stands for its `/` (the scripts' LABYRINTH_ROOT); the cluster's shared
state (tokens, members, Cilium) is one more directory. PATH holds only the fakes of tests/fakes/node_bin
(apt-get, kubeadm, kubectl, cilium, systemctl, hostnamectl, curl…) and a few harmless real tools, so a
command the fakes lack fails instead of running for real; and when the tests run as root the scripts
run as `nobody`, so a path that escaped LABYRINTH_ROOT cannot change this machine (it fails, visibly).
Nothing here opens a socket: the fake curl writes what a download would have given, and the fake
bash answers the cluster check's port probes from a table (`set_ports`) instead of connecting.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

FAKES = Path(__file__).resolve().parent / "node_bin"
# bash is not here: node_bin/bash is the real one except for the port probe
REAL_TOOLS = (
    "cat", "grep", "sed", "awk", "mkdir", "tee", "rm", "cp", "mv", "chmod", "install", "mktemp", "head",
    "tail", "tr", "date", "sleep", "touch", "ls", "wc", "cmp", "od", "seq", "env", "sh",
)  # fmt: skip
NOBODY = 65534
AS_NOBODY = os.geteuid() == 0


@dataclass(frozen=True)
class Call:
    """One call of a fake command: when (epoch seconds), which, with what arguments."""

    at: float
    name: str
    args: str

    @property
    def line(self) -> str:
        return f"{self.name} {self.args}".strip()


class ClusterSandbox:
    """The fake cluster's files: bin/, shared/, and one root per node. `close()` removes it all."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="labyrinth-fake-nodes-"))
        self.bin = self.dir / "bin"
        self.shared = self.dir / "shared"
        self.bin.mkdir()
        self.shared.mkdir()
        for fake in FAKES.iterdir():
            shutil.copy2(fake, self.bin / fake.name)
        for tool in REAL_TOOLS:
            found = shutil.which(tool)
            assert found is not None, f"{tool} is needed by the node sandbox"
            (self.bin / tool).symlink_to(found)
        self._own(self.dir)

    def _own(self, path: Path) -> None:
        path.chmod(0o755)
        if AS_NOBODY:
            for sub in [path, *path.rglob("*")]:
                os.lchown(sub, NOBODY, NOBODY)

    def node_root(self, name: str) -> Path:
        """The node's `/`, made on first use: a cloud VM's long hostname, an fstab, /etc/hosts."""
        root = self.dir / "nodes" / name
        if not root.exists():
            for sub in ("etc/apt/sources.list.d", "etc/modules-load.d", "etc/sysctl.d", "etc/default",
                        "usr/local/bin", "root", "tmp", "fake"):  # fmt: skip
                (root / sub).mkdir(parents=True)
            (root / "etc/hostname").write_text(f"{name}.us-east4-b.c.labyrinth-project.internal\n")
            (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
            (root / "etc/fstab").write_text("LABEL=cloudimg-rootfs / ext4 discard,errors=remount-ro 0 1\n")
            self._own(self.dir / "nodes")
        return root

    def env(self, node: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        root = self.node_root(node)
        return {
            "PATH": str(self.bin),
            "LABYRINTH_ROOT": str(root),
            "FAKE_SHARED": str(self.shared),
            "HOME": "/root",
            "TMPDIR": str(root / "tmp"),
            "LC_ALL": "C.UTF-8",
            **(extra or {}),
        }

    async def start(
        self, node: str, argv: Sequence[str], env: Mapping[str, str] | None = None, *, stdin: bool = False
    ) -> asyncio.subprocess.Process:
        """argv on `node` in a session of its own (pid = process group), as nobody when we are root."""
        who = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if AS_NOBODY else {}
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(node, env),
            cwd=self.node_root(node),
            start_new_session=True,
            **who,  # type: ignore[arg-type]
        )

    async def run(
        self,
        node: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[int, str, str]:
        """argv to its end: (exit status, stdout, stderr); `on_line` sees stdout as it comes."""
        proc = await self.start(node, argv, env)
        assert proc.stdout is not None and proc.stderr is not None
        out: list[str] = []
        err_task = asyncio.ensure_future(proc.stderr.read())
        while line := await proc.stdout.readline():
            text = line.decode()
            out.append(text)
            if on_line is not None:
                on_line(text.rstrip("\n"))
        err = (await err_task).decode()
        return await proc.wait(), "".join(out), err

    def script_path(self, node: str, name: str) -> Path:
        """Where a node script sits inside the node's root (copied there as bootstrap would upload it)."""
        return self.node_root(node) / "usr/local/lib/labyrinth" / name

    def fail_once(self, node: str, call_prefix: str) -> None:
        """The next call on `node` starting with `call_prefix` (e.g. "kubeadm init") fails, realistically."""
        path = self.node_root(node) / "fake/fail"
        with path.open("a") as out:
            out.write(call_prefix + "\n")
        if AS_NOBODY:
            os.chown(path, NOBODY, NOBODY)

    def calls(self, node: str) -> list[Call]:
        log = self.node_root(node) / "fake/calls.log"
        if not log.exists():
            return []
        calls = []
        for line in log.read_text().splitlines():
            at, name, *rest = line.split(" ", 2)
            calls.append(Call(float(at), name, rest[0] if rest else ""))
        return calls

    def set_ports(self, verdicts: Mapping[tuple[str, str], str]) -> None:
        """What the fake bash's port probe finds: {("10.168.0.2", "6443/tcp"): "filtered", …} — open,
        closed, filtered or unreachable; a port not given is closed (22/tcp: open)."""
        self.write_shared("ports", "".join(f"{host} {port} {v}\n" for (host, port), v in verdicts.items()))

    def write_shared(self, name: str, text: str) -> None:
        path = self.shared / name
        path.write_text(text)
        if AS_NOBODY:
            os.chown(path, NOBODY, NOBODY)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
