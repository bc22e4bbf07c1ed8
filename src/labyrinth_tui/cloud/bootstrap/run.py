"""bootstrap(): Kubernetes + Cilium on three Ubuntu VMs over SSH — scripts, join, labels, admin.conf.

The article's "Setup of Kubernetes" with what it did by hand automated: the scripts are uploaded and
streamed phase by phase into progress Steps; the join command is fetched from node-0 and handed to the
workers as a 0600 JoinConfiguration (never on a command line); the workers run in parallel, one failing
or unreachable does not stop the other; nodes are labelled nodelabel=node-wrk-N; admin.conf is kept 0600.
Every token, CA hash and key is masked in every Step, log line and exception message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import yaml

from labyrinth_tui.cloud import ASSETS
from labyrinth_tui.cloud.bootstrap.masking import Masker
from labyrinth_tui.cloud.bootstrap.phases import PhaseTracker, Progress
from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession

REMOTE_DIR: Final = "/usr/local/lib/labyrinth"
JOIN_DIR: Final = "/etc/labyrinth"
JOIN_CONFIG: Final = f"{JOIN_DIR}/join.yaml"
ADMIN_CONF: Final = "/etc/kubernetes/admin.conf"
KUBECTL: Final = ("kubectl", f"--kubeconfig={ADMIN_CONF}")
CRI_SOCKET: Final = "unix:///var/run/crio/crio.sock"
CTL_TIMEOUT: Final = 45 * 60.0  # apt, kubeadm init and Cilium: ~5 min in the article, slow mirrors happen
WRK_TIMEOUT: Final = 30 * 60.0
READY_TIMEOUT: Final = 300
GROUP: Final = "cluster"
_NAME_RE: Final = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_MINOR_RE: Final = re.compile(r"1\.[0-9]+")
_JOIN_RE: Final = re.compile(
    r"kubeadm join (?P<endpoint>\S+:\d+) --token (?P<token>[a-z0-9]{6}\.[a-z0-9]{16})"
    r"\s+--discovery-token-ca-cert-hash (?P<hash>sha256:[0-9a-f]{64})"
)


class BootstrapError(Exception):
    """Node `node` failed in `phase`; `tail` holds its last output lines. Everything in it is masked."""

    def __init__(self, node: str, phase: str, reason: str, tail: str = "") -> None:
        text = f"{node}: {phase} failed: {reason}"
        if tail:
            text += "\n  " + "\n  ".join(tail.splitlines())
        super().__init__(text)
        self.node = node
        self.phase = phase
        self.reason = reason
        self.tail = tail


class BootstrapFailed(Exception):
    """Some nodes failed (the others went on); `result` says what did get done."""

    def __init__(self, failures: Sequence[BootstrapError], result: BootstrapResult) -> None:
        super().__init__("\n".join(str(f) for f in failures))
        self.failures = tuple(failures)
        self.result = result


@dataclass(frozen=True, slots=True)
class Versions:
    """What the scripts install; the defaults are the article's."""

    kubernetes: str = "1.33"
    crio: str | None = None  # None: the same minor as Kubernetes
    cilium: str = "1.17.4"
    cilium_cli: str = "v0.18.3"
    pod_cidr: str = "10.10.0.0/16"

    def __post_init__(self) -> None:
        for what, value in (("Kubernetes", self.kubernetes), ("cri-o", self.crio or self.kubernetes)):
            if not _MINOR_RE.fullmatch(value):
                raise ValueError(f"{what} version {value!r}: give a minor version like 1.33")
        if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", self.cilium):
            raise ValueError(f"Cilium version {self.cilium!r}: give a version like 1.17.4")
        if not re.fullmatch(r"v[0-9]+\.[0-9]+\.[0-9]+", self.cilium_cli):
            raise ValueError(f"cilium CLI version {self.cilium_cli!r}: give a release like v0.18.3")
        ipaddress.IPv4Network(self.pod_cidr)  # ValueError names the problem


@dataclass(frozen=True, slots=True)
class BootstrapNode:
    """A VM to turn into a node: its Kubernetes name, the internal IP the cluster talks on, its session."""

    name: str
    internal_ip: str
    session: NodeSession
    sudo: bool = True  # False when the SSH user is root

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(f"node name {self.name!r} is not a short lowercase hostname (like node-1)")
        if ipaddress.ip_address(self.internal_ip).version != 4:
            raise ValueError(f"{self.name}: internal IP {self.internal_ip} is not IPv4")

    def argv(self, *args: str) -> list[str]:
        # -n: a sudo that wants a password fails at once instead of hanging the run
        return ["sudo", "-n", *args] if self.sudo else list(args)


@dataclass(frozen=True, slots=True)
class JoinCommand:
    """What `kubeadm token create --print-join-command` printed, as data."""

    endpoint: str
    token: str
    ca_hash: str

    @classmethod
    def parse(cls, text: str) -> JoinCommand:
        match = _JOIN_RE.search(text)
        if match is None:
            raise ValueError(
                "no `kubeadm join <host:port> --token … --discovery-token-ca-cert-hash …` in the output"
            )
        return cls(match["endpoint"], match["token"], match["hash"])

    def config(self, node: str, node_ip: str) -> str:
        """A kubeadm JoinConfiguration: the same join, with the short node name and its IP."""
        doc = {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "JoinConfiguration",
            "discovery": {
                "bootstrapToken": {
                    "apiServerEndpoint": self.endpoint,
                    "token": self.token,
                    "caCertHashes": [self.ca_hash],
                }
            },
            "nodeRegistration": {
                "name": node,
                "criSocket": CRI_SOCKET,
                "kubeletExtraArgs": [{"name": "node-ip", "value": node_ip}],
            },
        }
        return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class BootstrapResult:
    control_plane: str
    admin_conf: Path | None = None
    joined: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


NODE_LIB = "node-lib.sh"  # sourced by both node scripts from their own folder


def script_text(name: str) -> str:
    """A node script shipped with the package (node-ctl.sh, node-wrk.sh, and the node-lib.sh they source)."""
    if name not in ("node-ctl.sh", "node-wrk.sh", NODE_LIB):
        raise ValueError(f"no node script named {name!r}")
    return (ASSETS / name).read_text(encoding="utf-8")


def write_private(path: Path, text: str) -> None:
    """`text` into `path` with mode 0600 from its first byte (its folder 0700), replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    tmp.replace(path)


class _Run:
    """One bootstrap: its masker and progress, shared by the steps below."""

    def __init__(self, progress: Progress, masker: Masker) -> None:
        self.masker = masker
        self._progress = progress

    def report(self, step: Step) -> None:
        self._progress(self.masker.step(step))

    async def step(self, group: str, name: str, work: Callable[[], Awaitable[str]]) -> str:
        """Run `work` as one Step; a NodeError becomes a (masked) BootstrapError naming the step."""
        started = time.monotonic()
        self.report(Step(group, name, StepState.RUNNING))
        try:
            log = await work()
        except (NodeError, ValueError, OSError) as exc:
            reason = self.masker(getattr(exc, "reason", None) or str(exc))
            self.report(Step(group, name, StepState.FAILED, elapsed=time.monotonic() - started, log=reason))
            raise BootstrapError(group, name, reason) from None
        self.report(Step(group, name, StepState.DONE, 1, 1, time.monotonic() - started, log))
        return log

    async def upload(self, node: BootstrapNode, script: str) -> None:
        """The script and the library it sources, side by side in REMOTE_DIR."""

        async def work() -> str:
            await node.session.run(node.argv("install", "-d", "-m", "0755", REMOTE_DIR))
            sent = []
            for name in (NODE_LIB, script):
                text = script_text(name)
                await node.session.run(node.argv("dd", f"of={REMOTE_DIR}/{name}", "status=none"), input=text)
                sent.append(f"{REMOTE_DIR}/{name} ({len(text)} bytes)")
            return ", ".join(sent)

        await self.step(node.name, "upload", work)

    async def script(self, node: BootstrapNode, script: str, env: dict[str, str], timeout: float) -> None:
        """Run the uploaded script, each `::phase` a Step; BootstrapError with its last lines if it fails."""
        tracker = PhaseTracker(node.name, self._progress, self.masker)
        argv = node.argv("env", *(f"{k}={v}" for k, v in env.items()), "bash", f"{REMOTE_DIR}/{script}")
        try:
            # the same privilege ends the script's process group if we stop early (a timeout)
            async with node.session.stream(argv, timeout=timeout, privilege=node.argv()) as lines:
                async for line in lines:
                    tracker.feed(line)
            status = lines.exit_status
            stderr = lines.stderr_tail
        except NodeError as exc:
            reason = self.masker(exc.reason)
            phase = tracker.fail(why=reason)
            raise BootstrapError(node.name, phase, reason, tracker.tail_text()) from None
        if status != 0 or not tracker.completed:
            why = f"{script} exited {status}" if status != 0 else f"{script} ended without finishing"
            if stderr.strip():
                tracker.tail.extend(stderr.strip().splitlines()[-3:])
            phase = tracker.fail(tracker.failed, why)
            raise BootstrapError(node.name, phase, why, tracker.tail_text())


async def bootstrap(
    control: BootstrapNode,
    workers: Sequence[BootstrapNode],
    progress: Progress,
    *,
    config_dir: Path,
    versions: Versions | None = None,
    masker: Masker | None = None,
) -> BootstrapResult:
    """The control plane on `control`, then the `workers` in parallel; admin.conf into `config_dir` (0600).

    Raises BootstrapError when the control plane fails (nothing can go on without it) and
    BootstrapFailed when some workers failed — after the others were joined, labelled and admin.conf kept.
    Re-running resumes: the scripts skip the phases that are done.
    """
    v = versions or Versions()
    run = _Run(progress, masker or Masker())
    result = BootstrapResult(control.name)
    await run.upload(control, "node-ctl.sh")
    ctl_env = {
        "IP": control.internal_ip,
        "NODE_NAME": control.name,
        "K8S_VERSION": v.kubernetes,
        "CRIO_VERSION": v.crio or v.kubernetes,
        "CILIUM_VERSION": v.cilium,
        "CILIUM_CLI_VERSION": v.cilium_cli,
        "POD_CIDR": v.pod_cidr,
        "HOME": "/root",  # the article's: kubectl and cilium find /root/.kube/config
    }
    await run.script(control, "node-ctl.sh", ctl_env, CTL_TIMEOUT)

    async def join_command() -> str:
        out = await control.session.run(
            control.argv("kubeadm", "token", "create", "--print-join-command"), timeout=120
        )
        join = JoinCommand.parse(out.stdout)
        run.masker.add(join.token)
        run.masker.add(join.ca_hash)
        joins.append(join)
        return (
            f"kubeadm join {join.endpoint} --token {join.token} --discovery-token-ca-cert-hash {join.ca_hash}"
        )

    joins: list[JoinCommand] = []
    await run.step(GROUP, "join command", join_command)
    join = joins[0]

    async def worker(node: BootstrapNode) -> None:
        await run.upload(node, "node-wrk.sh")

        async def put_join_config() -> str:
            await node.session.run(node.argv("install", "-d", "-m", "0700", JOIN_DIR))
            config = join.config(node.name, node.internal_ip)
            await node.session.run(node.argv("dd", f"of={JOIN_CONFIG}", "status=none"), input=config)
            return f"{JOIN_CONFIG} (0700 folder; removed by node-wrk.sh after the join)"

        await run.step(node.name, "join config", put_join_config)
        env = {
            "IP": node.internal_ip,
            "NODE_NAME": node.name,
            "K8S_VERSION": v.kubernetes,
            "CRIO_VERSION": v.crio or v.kubernetes,
            "JOIN_CONFIG": JOIN_CONFIG,
        }
        await run.script(node, "node-wrk.sh", env, WRK_TIMEOUT)

    outcomes = await asyncio.gather(*(worker(w) for w in workers), return_exceptions=True)
    failures: list[BootstrapError] = []
    for node, outcome in zip(workers, outcomes, strict=True):
        if isinstance(outcome, BootstrapError):
            failures.append(outcome)
        elif isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not a node's failure
            failures.append(
                BootstrapError(node.name, "worker", run.masker(f"{type(outcome).__name__}: {outcome}"))
            )
        else:
            result.joined.append(node.name)
    result.failed = {f.node: f.reason for f in failures}

    if result.joined:

        async def ready() -> str:
            nodes = [f"node/{n}" for n in result.joined]
            wait = [*KUBECTL, "wait", "--for=condition=Ready", *nodes, f"--timeout={READY_TIMEOUT}s"]
            out = await control.session.run(control.argv(*wait), timeout=READY_TIMEOUT + 30)
            return out.stdout.strip()

        await run.step(GROUP, "nodes ready", ready)

        async def labels() -> str:
            lines = []
            for index, node in enumerate(workers, start=1):
                if node.name in result.joined:
                    label = f"nodelabel=node-wrk-{index}"
                    argv = control.argv(*KUBECTL, "label", "node", node.name, label, "--overwrite")
                    lines.append((await control.session.run(argv)).stdout.strip())
                    result.labels[node.name] = label.split("=", 1)[1]
            return "\n".join(lines)

        await run.step(GROUP, "labels", labels)

    async def fetch_admin_conf() -> str:
        text = (await control.session.run(control.argv("cat", ADMIN_CONF))).stdout
        path = config_dir / "admin.conf"
        write_private(path, text)
        result.admin_conf = path
        return f"{path} (0600)"

    await run.step(GROUP, "admin.conf", fetch_admin_conf)
    if failures:
        raise BootstrapFailed(failures, result)
    return result
