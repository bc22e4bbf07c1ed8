"""Building the lab: `up`, idempotent and fast (one `ip -batch` per namespace), reported step by step."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from labyrinth_tui.lab import links
from labyrinth_tui.lab.bpf import datapath, health, notrack
from labyrinth_tui.lab.checks import problems
from labyrinth_tui.lab.down import down_unlocked, leftovers
from labyrinth_tui.lab.host import ip_batch, require_root, wait_all
from labyrinth_tui.lab.netlink import configure_pod
from labyrinth_tui.lab.netns import add_netns, write_sysctls
from labyrinth_tui.lab.owned import locked, mark
from labyrinth_tui.lab.services import (
    apply_kube_proxy,
    dnsmasq_argv,
    start_in_netns,
    start_sshd,
    wait_listening,
    write_key,
    write_resolv_conf,
)
from labyrinth_tui.lab.spec import LabSpec, NodeSpec
from labyrinth_tui.lab.state import (
    LabError,
    LabState,
    NodeState,
    PodState,
    PortState,
    ServiceState,
    SshInfo,
    load_state,
    save_state,
    state_dir,
)
from labyrinth_tui.model.progress import Step, StepState

Progress = Callable[[Step], None]
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}


class _Steps:
    """Reports one Step per phase: running when it starts, done (with its time) when it ends."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress or (lambda step: None)

    @contextlib.contextmanager
    def step(self, name: str, group: str = "lab", log: str = "") -> Iterator[None]:
        start = time.monotonic()
        _maybe_crash(name)
        self.progress(Step(group, name, StepState.RUNNING, 0, 1, 0.0, log))
        try:
            yield
        except Exception as exc:
            self.progress(Step(group, name, StepState.FAILED, 0, 1, time.monotonic() - start, str(exc)))
            raise
        self.progress(Step(group, name, StepState.DONE, 1, 1, time.monotonic() - start))


def _maybe_crash(step: str) -> None:
    # tests prove `down` cleans up after `kill -9` at any step: LABYRINTH_CRASH_AT=<step> dies right there
    if os.environ.get("LABYRINTH_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def is_up(spec: LabSpec, state: LabState) -> bool:
    # another datapath asked for: down and up again, never a half-switched lab (a fallback counts as asked)
    same_datapath = state.datapath == spec.datapath or bool(state.datapath_note)
    sizes = (len(state.pods), len(state.nodes)) == (len(spec.pods), len(spec.nodes))
    return sizes and same_datapath and not problems(state)


def up(spec: LabSpec, progress: Progress | None = None) -> LabState:
    """Bring the lab up; if it is already up as specified, change nothing. Leftovers are cleared first."""
    require_root()
    with locked(spec.prefix):
        try:
            existing = load_state(spec.prefix)
        except LabError:
            existing = None  # a damaged state is a leftover like any other: cleared below
        if existing is not None and is_up(spec, existing):
            _Steps(progress).progress(Step("lab", "already up", StepState.DONE, 1, 1))
            return existing
        if leftovers(spec.prefix):
            down_unlocked(spec.prefix)
        try:
            return _build(spec, _Steps(progress))
        except Exception:
            down_unlocked(spec.prefix)  # a failed `up` leaves nothing (a verifier rejection, a dead sshd)
            raise


def _node_lines(spec: LabSpec, node: NodeSpec) -> list[str]:
    extra = health.node_side(spec, node) if spec.datapath == "ebpf" else []
    return links.node_batch(spec, node) + extra


def _add_pod_netns(spec: LabSpec) -> None:
    for pod in spec.pods:
        try:
            add_netns(spec.pod_netns(pod))  # IPv6 kept quiet over netlink
        except OSError as exc:
            raise LabError(f"building the lab failed: pod {pod.qualified_name}'s netns: {exc}") from exc


def _make_devices(spec: LabSpec, steps: _Steps, pool: ThreadPoolExecutor) -> None:
    """The namespaces and every device in them."""
    ebpf = spec.datapath == "ebpf"
    with steps.step("namespaces", log=f"{3 + len(spec.nodes) + len(spec.pods)} netns"):
        health_ns = [health.health_netns(spec, n) for n in spec.nodes] if ebpf else []
        names = [spec.vpc_netns, *(spec.node_netns(n.name) for n in spec.nodes)]
        # marked before they exist: `down` removes only what carries the lab's mark (lab/owned.py)
        mark(spec.prefix, [*names, *health_ns, *(spec.pod_netns(p) for p in spec.pods)])
        batch = [f"netns add {name}" for name in [*names, *health_ns]]
        wait_all([("netns", ip_batch(batch))])  # sets up /run/netns
        list(pool.map(lambda name: write_sysctls(name, NODE_SYSCTLS), names))
        # the pods' from this process, one after another in a worker thread (lab/netns.py add_netns:
        # `ip netns add` costs O(namespaces) each; mounts take one lock, so more threads only wait)
        pool.submit(_add_pod_netns, spec).result()
    with steps.step("links", log="VPC bridge, ens4, cilium_host/net, cilium_vxlan, lxc veths"):
        wait_all([("vpc", ip_batch(links.vpc_batch(spec), netns=spec.vpc_netns))])
        wait_all(
            [(n.name, ip_batch(_node_lines(spec, n), netns=spec.node_netns(n.name))) for n in spec.nodes]
        )
        procs = [
            (
                f"{n.name} fdb",
                ip_batch(links.fdb_batch(spec, n), netns=spec.node_netns(n.name), tool="bridge"),
            )
            for n in spec.nodes
        ]
        if ebpf:
            procs += [
                (
                    f"{n.name} lxc_health",
                    ip_batch(health.endpoint_side(spec, n), netns=health.health_netns(spec, n)),
                )
                for n in spec.nodes
            ]
        # the pods' side over netlink from worker threads (lab/netlink.py: `ip -n` per pod is O(N²))
        configured = pool.map(lambda pod: configure_pod(spec, pod), spec.pods)
        wait_all(procs)
        list(configured)


def _build(spec: LabSpec, steps: _Steps) -> LabState:
    t0 = time.monotonic()
    run_dir = state_dir(spec.prefix)
    run_dir.mkdir(parents=True, exist_ok=True)
    pool = ThreadPoolExecutor(max_workers=8)
    # The eBPF datapath loads its programs while the lab comes up and attaches them once the rest is up:
    # each tcx attach waits for an RCU grace period, and the rest's netlink, sockets and process starts
    # queue RCU callbacks that make those longer (12-16 ms a link beside them, 8-9 ms after them; see
    # datapath.up), so attaching last is faster than attaching beside the rest.
    rest_up: Future[None] = Future()
    ebpf = spec.datapath == "ebpf"
    bpf = pool.submit(datapath.start, spec, _maybe_crash, rest_up.result) if ebpf else None
    try:
        _make_devices(spec, steps, pool)
        with steps.step("kube-proxy", log="iptables nat: KUBE-SERVICES → KUBE-SVC → KUBE-SEP → DNAT"):
            # with BPF doing the service translation, Cilium's NOTRACK rules go in beside kube-proxy's
            bpf_loads = ebpf and datapath.fallback_reason() is None
            apply_kube_proxy(spec, notrack.raw_rules(spec) if bpf_loads else "")
        dns_pod = next(p for p in spec.pods if p.app == "kube-dns")
        dns_ip = next(s.cluster_ip for s in spec.services if s.name == "kube-dns")
        with steps.step("dns", group=dns_pod.node, log=f"dnsmasq as CoreDNS on {dns_pod.ip}"):
            for pod in spec.pods:
                write_resolv_conf(spec, pod, dns_ip)
            dns = start_in_netns(
                spec.pod_netns(dns_pod), dnsmasq_argv(spec, dns_pod, run_dir), run_dir / "dns.log"
            )
        with steps.step("ssh keys"):
            client_key = run_dir / "id_ed25519"
            authorized = run_dir / "authorized_keys"
            authorized.write_text(write_key(client_key) + "\n")
            host_keys = {}
            for node in spec.nodes:
                node_dir = run_dir / node.name
                node_dir.mkdir(exist_ok=True)
                host_keys[node.name] = write_key(node_dir / "ssh_host_ed25519_key")
        sshds = {}
        for node in spec.nodes:
            with steps.step("sshd", group=node.name, log=f"{node.address}:22"):
                sshds[node.name] = start_sshd(spec, node, run_dir / node.name, authorized)
        _maybe_crash("wait")
        for node in spec.nodes:
            wait_listening(spec.node_netns(node.name), node.address, 22, sshds[node.name], timeout=5.0)
        wait_listening(spec.pod_netns(dns_pod), dns_pod.ip, 53, dns, timeout=5.0)
        started = datapath.Started("iptables", "", "")
        rest_up.set_result(None)
        if bpf is not None:
            # the step's time is what `up` waited for it beyond the rest
            with steps.step("ebpf", log="tc programs on every Cilium device, service map, conntrack"):
                started = bpf.result()
        state = _state(
            spec,
            run_dir,
            host_keys,
            {n: p.pid for n, p in sshds.items()},
            dns.pid,
            time.monotonic() - t0,
            started,
        )
        save_state(state)
        steps.progress(Step("lab", "ready", StepState.DONE, 1, 1, state.up_seconds))
        return state
    except BaseException as exc:
        if not rest_up.done():
            rest_up.set_exception(exc)  # the loader stops waiting and lets go of its programs
        raise
    finally:
        pool.shutdown()


def _state(
    spec: LabSpec,
    run_dir: Path,
    host_keys: dict[str, str],
    sshd_pids: dict[str, int],
    dns_pid: int,
    seconds: float,
    started: datapath.Started,
) -> LabState:
    extra = len(spec.pods_on("node-0"))
    return LabState(
        prefix=spec.prefix,
        state_dir=str(run_dir),
        datapath=started.datapath,
        bpf_attach=started.attach,
        datapath_note=started.note,
        pods_per_node=extra,
        up_seconds=round(seconds, 3),
        nodes=[
            NodeState(
                n.name,
                spec.node_netns(n.name),
                n.address,
                n.role,
                n.pod_cidr,
                n.gateway,
                SshInfo(22, host_keys[n.name], "root", str(run_dir / "id_ed25519")),
                sshd_pids[n.name],
            )
            for n in spec.nodes
        ],
        pods=[
            PodState(
                p.namespace, p.name, p.node, spec.pod_netns(p), p.ip, p.host_veth, spec.node(p.node).gateway
            )
            for p in spec.pods
        ],
        services=[
            ServiceState(
                s.namespace,
                s.name,
                s.cluster_ip,
                [PortState(p.name, p.protocol, p.port, p.target_port) for p in s.ports],
                [p.ip for p in spec.endpoints(s)],
            )
            for s in spec.services
        ],
        dns_pid=dns_pid,
    )
