"""What a pod's image has to make the journey's traffic: ncat, nc, bash's /dev/tcp or python3, asked in turn.

Each is looked for by running it (`TOOL --version`) through exec: an image with no shell and no `which`
still answers that way, and a missing one fails the same on every runtime ("executable file not found",
or `ip netns exec`'s "No such file or directory").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from labyrinth_tui.cloud.kube.client import KubeClient
from labyrinth_tui.cloud.kube.errors import ExecFailed
from labyrinth_tui.cloud.kube.exec import PodExec
from labyrinth_tui.nodes.commands import bash_dial

TOOLS: Final = ("ncat", "nc", "bash", "python3")
PROBE_TIMEOUT: Final = 10.0
_MISSING: Final = ("executable file not found", "no such file or directory", "not found")

# python3 as nc: the server prints "Listening on" (what readiness waits for), then what one client sent
_PY_SERVER: Final = """
import socket, sys
udp = sys.argv[1] == "udp"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2])))
if not udp:
    s.listen(1)
print("Listening on 0.0.0.0:" + sys.argv[2], file=sys.stderr, flush=True)
if udp:
    sys.stdout.buffer.write(s.recvfrom(65535)[0])
else:
    c = s.accept()[0]
    while data := c.recv(65535):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
sys.stdout.flush()
"""
_PY_CLIENT: Final = """
import socket, sys
udp = sys.argv[1] == "udp"
data = sys.stdin.buffer.read()
if udp:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(data, (sys.argv[2], int(sys.argv[3])))
else:
    c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=10)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    while c.recv(65535):
        pass
"""


class ToolMissing(ExecFailed):
    """None of the tools the journey can use is in the pod's image."""


@dataclass(frozen=True, slots=True)
class PodTool:
    """The tool a pod runs for the journey, and its argv as server and as client."""

    name: str

    @property
    def can_listen(self) -> bool:
        return self.name != "bash"  # /dev/tcp dials only

    def server(self, port: int, proto: str = "tcp") -> list[str]:
        if self.name == "python3":
            return ["python3", "-c", _PY_SERVER, proto, str(port)]
        if self.name == "bash":
            raise ExecFailed("bash's /dev/tcp cannot listen")
        return [self.name, "-v", *(["-u"] if proto == "udp" else []), "-l", "0.0.0.0", str(port)]

    def client(self, host: str, port: int, proto: str = "tcp") -> list[str]:
        if self.name == "python3":
            return ["python3", "-c", _PY_CLIENT, proto, host, str(port)]
        if self.name == "bash":
            return bash_dial(proto, host, port)
        return [self.name, *(["-u"] if proto == "udp" else []), host, str(port)]


async def _present(kube: KubeClient, namespace: str, pod: str, tool: str) -> str | None:
    """None when `tool` ran in the pod; else why not, in the runtime's words."""
    probe = await PodExec.start(kube, namespace, pod, [tool, "--version"], stdin=False)
    try:
        code = await probe.wait(PROBE_TIMEOUT)
    finally:
        await probe.close()
    said = (probe.stderr + probe.stdout).strip()
    if code in (126, 127) or any(m in said.lower() for m in _MISSING):
        return said.splitlines()[-1] if said else f"exit {code}"
    return None


async def detect_tool(
    kube: KubeClient, namespace: str, pod: str, *, listen: bool = False, tools: Sequence[str] = TOOLS
) -> PodTool:
    """The first of `tools` the pod has (able to listen if `listen`); ToolMissing says what was tried."""
    tried = []
    for name in tools:
        tool = PodTool(name)
        if listen and not tool.can_listen:
            tried.append(f"{name}: cannot listen")
            continue
        why = await _present(kube, namespace, pod, name)
        if why is None:
            return tool
        tried.append(f"{name}: {why}")
    wanted = "listen with" if listen else "dial with"
    raise ToolMissing(
        f"{namespace}/{pod}: nothing in its image to {wanted} — tried {'; '.join(tried)}. "
        "Use an image with ncat (nmap-ncat), nc, bash or python3."
    )


async def detect_tools(
    kube: KubeClient, client: tuple[str, str], servers: Sequence[tuple[str, str]]
) -> tuple[PodTool, list[PodTool]]:
    """The client's tool and each server's, asked of every pod at once."""
    found = await asyncio.gather(
        detect_tool(kube, *client), *(detect_tool(kube, *s, listen=True) for s in servers)
    )
    return found[0], list(found[1:])
