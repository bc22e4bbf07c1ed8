"""A scratch node made of real network namespaces (and optionally a real sshd inside it), for root tests.

Layout, in the article's words but under a unique prefix `t<pid>x<n>-` and removed in `finally`:
  <p>vpc   ── v-node ↔ ens4 (10.168.0.4/24) ──  <p>node  (cilium_host 10.0.1.49 ↔ cilium_net,
                                                         cilium_vxlan vni 2 port 8472 on ens4)
  <p>node  ── lxc…a ↔ eth0 (10.0.1.15) ── <p>pod-a   (runs `sleep`)
           ── lxc…b ↔ eth0 (10.0.1.16) ── <p>pod-b
Nothing is added to the root namespace.
"""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_counter = itertools.count()
SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class ScratchNode:
    prefix: str
    node: str
    vpc: str
    pod_a: str
    pod_b: str
    pod_a_veth: str
    pod_b_veth: str
    pod_a_pid: int  # a process inside pod-a


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextmanager
def scratch_node() -> Iterator[ScratchNode]:
    prefix = f"t{os.getpid()}x{next(_counter)}-"
    names = {k: prefix + k for k in ("node", "vpc", "pod-a", "pod-b")}
    sleeper: subprocess.Popen[bytes] | None = None
    try:
        for name in names.values():
            ip("netns", "add", name)
            ip("-n", name, "link", "set", "lo", "up")
        node, vpc = names["node"], names["vpc"]
        ip("-n", node, "link", "add", "ens4", "type", "veth", "peer", "name", "v-node", "netns", vpc)
        ip("-n", node, "addr", "add", "10.168.0.4/24", "dev", "ens4")
        ip("-n", node, "link", "add", "cilium_host", "type", "veth", "peer", "name", "cilium_net")
        ip("-n", node, "addr", "add", "10.0.1.49/32", "dev", "cilium_host")
        ip("-n", node, "link", "add", "cilium_vxlan", "type", "vxlan", "id", "2", "dstport", "8472",
           "local", "10.168.0.4", "dev", "ens4", "nolearning")  # fmt: skip
        veths = {}
        for pod, pod_ip, veth in (
            ("pod-a", "10.0.1.15", "lxc00000000000a"),
            ("pod-b", "10.0.1.16", "lxc00000000000b"),
        ):
            ns = names[pod]
            veths[pod] = veth
            ip("-n", node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", ns, "addr", "add", f"{pod_ip}/32", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "route", "add", "10.0.1.49", "dev", "eth0", "scope", "link")
            ip("-n", ns, "route", "add", "default", "via", "10.0.1.49", "dev", "eth0", "mtu", "1410")
            ip("-n", node, "link", "set", veth, "up")
            ip("-n", node, "route", "add", f"{pod_ip}/32", "dev", veth)
        for dev in ("ens4", "cilium_host", "cilium_net", "cilium_vxlan"):
            ip("-n", node, "link", "set", dev, "up")
        ip("-n", vpc, "link", "set", "v-node", "up")
        sleeper = subprocess.Popen(["ip", "netns", "exec", names["pod-a"], "sleep", "600"])
        yield ScratchNode(
            prefix, node, vpc, names["pod-a"], names["pod-b"], veths["pod-a"], veths["pod-b"], sleeper.pid
        )
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
        for name in names.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass(frozen=True)
class Sshd:
    netns: str
    address: str
    port: int
    host_key_line: str
    client_key: str
    other_client_key: str  # a key sshd does not know
    pid: int


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@contextmanager
def sshd_in(netns: str, address: str, tmp: Path) -> Iterator[Sshd]:
    """A real OpenSSH sshd listening inside `netns` only, with its own config and keys under `tmp`."""
    for key in ("host", "client", "other"):
        _keygen(tmp / key)
    (tmp / "authorized_keys").write_text((tmp / "client.pub").read_text())
    config = tmp / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {address}:22",
                f"HostKey {tmp / 'host'}",
                f"PidFile {tmp / 'sshd.pid'}",
                f"AuthorizedKeysFile {tmp / 'authorized_keys'}",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "MaxSessions 10",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, SSHD, "-D", "-e", "-f", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_line(proc, "Server listening on", timeout=10)
        # keep reading its log: a full stderr pipe would stop sshd
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # type: ignore[union-attr]
        yield Sshd(
            netns,
            address,
            22,
            (tmp / "host.pub").read_text().strip(),
            str(tmp / "client"),
            str(tmp / "other"),
            proc.pid,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float) -> None:
    """Read proc's stderr (unbuffered, so nothing hides in a buffer from select) until `text` shows."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + timeout
    seen = b""
    while text.encode() not in seen:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            raise RuntimeError(f"sshd did not say {text!r}: {seen.decode(errors='replace')[-2000:]}")
        seen += chunk
