"""The lab's real parts: an sshd per node, the DNS pod (dnsmasq as CoreDNS), kube-proxy's rules, keys."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from labyrinth_tui.lab.kubeproxy import nat_rules
from labyrinth_tui.lab.netns import entered, own_hostname
from labyrinth_tui.lab.spec import LabSpec, NodeSpec, PodSpec
from labyrinth_tui.lab.state import ETC_NETNS, LabError

SSHD = "/usr/sbin/sshd"
CLUSTER_DOMAIN = "cluster.local"


def write_key(path: Path) -> str:
    """A new ed25519 private key at path (0600, OpenSSH format); returns its public key line.

    cryptography (asyncssh's own backend) rather than asyncssh: importing asyncssh costs ~0.35 s,
    which every `labyrinth lab up` paid (`python -X importtime -m labyrinth_tui lab status`)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private)
    ssh = serialization.Encoding.OpenSSH
    public = key.public_key().public_bytes(ssh, serialization.PublicFormat.OpenSSH) + b"\n"
    path.with_suffix(".pub").write_bytes(public)
    return public.decode().strip()


def sshd_config(node_dir: Path, node: NodeSpec, authorized_keys: Path) -> str:
    """The node's sshd. HOME is the node's own folder: a login shell that is bash reads ~/.bashrc for every
    command sshd runs, and this machine's root one ran `pyenv init -` (~0.1 s of CPU per command, 0.25 s
    per node of discovery at 21 nodes; docs/lab-facts.md) — the machine's dotfiles are not the node's."""
    return "\n".join(
        [
            f"ListenAddress {node.address}",
            "Port 22",
            f"HostKey {node_dir / 'ssh_host_ed25519_key'}",
            f"PidFile {node_dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized_keys}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "MaxSessions 10",
            "MaxStartups 100:30:200",
            "ClientAliveInterval 5",
            "LogLevel ERROR",
            f"SetEnv HOME={node_dir}",
            "",
        ]
    )


def start_in_netns(
    netns: str, argv: list[str], log: Path, hostname: str | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-lived process inside netns (with its /etc/netns files), in a session of its own."""
    with log.open("ab") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            # the node's own hostname, so `ssh node-1 hostname` answers node-1 as on the article's VMs
            preexec_fn=(lambda: own_hostname(hostname)) if hostname else None,
        )


def start_sshd(
    spec: LabSpec, node: NodeSpec, node_dir: Path, authorized_keys: Path
) -> subprocess.Popen[bytes]:
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    config = node_dir / "sshd_config"
    config.write_text(sshd_config(node_dir, node, authorized_keys))
    argv = [SSHD, "-D", "-e", "-f", str(config)]
    return start_in_netns(spec.node_netns(node.name), argv, node_dir / "sshd.log", hostname=node.name)


def wait_listening(
    netns: str, address: str, port: int, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    """Wait until a TCP socket listens on address:port (or any address) inside netns; fail with the process's
    log if it died.

    Read from the kernel's socket table, not by connecting: a connection makes sshd fork a session and
    dnsmasq a TCP child that both exit at once, and those exits (RCU callbacks) were what slowed the eBPF
    datapath's first tcx attaches right after (lab/bpf/datapath.py up)."""
    wanted = {f"{_proc_net_address(address)}:{port:04X}", f"00000000:{port:04X}"}
    deadline = time.monotonic() + timeout
    with entered(netns):
        while True:
            if proc.poll() is not None:
                raise LabError(f"{address}:{port} in {netns}: the server exited with {proc.returncode}")
            if wanted & listening_tcp():
                return
            if time.monotonic() > deadline:
                raise LabError(f"{address}:{port} in {netns}: nothing listening after {timeout:.1f}s")
            time.sleep(0.005)  # the server is starting: a few ms


TCP_LISTEN = "0A"  # include/net/tcp_states.h: TCP_LISTEN = 10


def _proc_net_address(address: str) -> str:
    """10.168.0.4 as /proc/net/tcp prints it: the address's 4 bytes read as a host-order (little) u32."""
    return f"{int.from_bytes(socket.inet_aton(address), 'little'):08X}"


def listening_tcp(table: str = "/proc/thread-self/net/tcp") -> set[str]:
    """The local 'ADDR:PORT' (as /proc/net/tcp writes them) of every listening IPv4 TCP socket of this
    thread's network namespace; lines that do not parse are skipped."""
    with open(table, encoding="ascii", errors="replace") as lines:
        next(lines, None)  # the header
        found = set()
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == TCP_LISTEN:
                found.add(fields[1])
        return found


def dns_records(spec: LabSpec) -> list[str]:
    records = []
    for service in spec.services:
        records.append(f"{service.name}.{service.namespace}.svc.{CLUSTER_DOMAIN},{service.cluster_ip}")
    for pod in spec.pods:
        records.append(f"{pod.ip.replace('.', '-')}.{pod.namespace}.pod.{CLUSTER_DOMAIN},{pod.ip}")
    return records


def dnsmasq_argv(spec: LabSpec, dns_pod: PodSpec, run_dir: Path) -> list[str]:
    """dnsmasq answering like CoreDNS: cluster names from the service table, NXDOMAIN for the rest of it."""
    argv = [
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        f"--listen-address={dns_pod.ip}",
        "--port=53",
        f"--local=/{CLUSTER_DOMAIN}/",
        f"--pid-file={run_dir / 'dnsmasq.pid'}",
        "--log-facility=-",
        "--log-queries",
    ]
    argv += [f"--host-record={record}" for record in dns_records(spec)]
    return argv


def write_resolv_conf(spec: LabSpec, pod: PodSpec, dns_ip: str) -> None:
    """The pod's /etc/resolv.conf as the kubelet writes it (ClusterFirst), for `ip netns exec`."""
    folder = ETC_NETNS / spec.pod_netns(pod)
    folder.mkdir(parents=True, exist_ok=True)
    search = f"{pod.namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}"
    (folder / "resolv.conf").write_text(f"search {search}\nnameserver {dns_ip}\noptions ndots:5\n")


def kube_proxy_restore(spec: LabSpec, node: NodeSpec) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ip", "netns", "exec", spec.node_netns(node.name), "iptables-restore", "--noflush"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def apply_kube_proxy(spec: LabSpec, extra: str = "") -> None:
    """kube-proxy's nat rules on every node, and `extra` (more iptables-restore tables) with them."""
    rules = (nat_rules(spec) + extra).encode()
    procs = [(node, kube_proxy_restore(spec, node)) for node in spec.nodes]
    errors = []
    for node, proc in procs:
        _, err = proc.communicate(rules)
        if proc.returncode != 0:
            errors.append(f"{node.name}: {err.decode().strip()}")
    if errors:
        raise LabError("kube-proxy rules were refused by iptables-restore: " + "; ".join(errors))
