"""Lab up / down / status: idempotent, fast (one `ip -batch` per namespace), leftovers found by prefix."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from labyrinth_tui.lab import links
from labyrinth_tui.lab.bpf import datapath, health
from labyrinth_tui.lab.netlink import configure_pod
from labyrinth_tui.lab.netns import add_netns, list_netns, netns_path, pids_in, write_sysctls
from labyrinth_tui.lab.owned import (
    capture_workdir_pattern,
    locked,
    mark,
    marked,
    orphan_run_roots,
    remove_inside,
    unmark,
)
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
    ETC_NETNS,
    RUN_DIR,
    TMP_DIR,
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
QUIET_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab creates network namespaces and needs root: run `sudo labyrinth lab up` "
            "(or `make run`, which uses sudo when needed)"
        )


def _ip_batch(lines: Sequence[str], *, netns: str | None = None, tool: str = "ip") -> subprocess.Popen[bytes]:
    argv = [tool, *(["-n", netns] if netns else []), "-batch", "-"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(("\n".join(lines) + "\n").encode())
    proc.stdin.close()
    return proc


def _wait_all(procs: Sequence[tuple[str, subprocess.Popen[bytes]]]) -> None:
    errors = []
    for what, proc in procs:
        assert proc.stderr is not None
        err = proc.stderr.read().decode().strip()
        if proc.wait() != 0:
            errors.append(f"{what}: {err or f'exit {proc.returncode}'}")
    if errors:
        raise LabError("building the lab failed: " + "; ".join(errors))


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


def problems(state: LabState) -> list[str]:
    """What of the lab `state` describes is not there: a netns gone, a sshd/dnsmasq dead or elsewhere."""
    present = set(list_netns())
    wanted = [f"{state.prefix}.vpc", *(n.netns for n in state.nodes), *(p.netns for p in state.pods)]
    found = [f"netns {name} is gone" for name in wanted if name not in present]
    dns_netns = next((p.netns for p in state.pods if p.name.startswith("coredns")), "")
    daemons = [
        ("dnsmasq", state.dns_pid, dns_netns),
        *(("sshd on " + n.name, n.sshd_pid, n.netns) for n in state.nodes),
    ]
    for what, pid, netns in daemons:
        if not _ours(pid, state.state_dir):
            found.append(f"{what} (pid {pid}) is not running")
        elif netns not in present or not _in_netns(pid, netns):
            found.append(f"{what} (pid {pid}) is not in netns {netns}")
    return found


def _ours(pid: int, state_dir: str) -> bool:
    """pid is alive and is one of this lab's daemons: its command line names the lab's state dir."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if pid > 0 else []
    except OSError:
        return False
    mine = os.fsencode(state_dir.rstrip("/") + "/")
    return not _zombie(pid) and any(mine in a for a in args)


def _in_netns(pid: int, netns: str) -> bool:
    try:
        want, have = os.stat(netns_path(netns)), os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return False
    return (want.st_dev, want.st_ino) == (have.st_dev, have.st_ino)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return pid > 0


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
            _down_unlocked(spec.prefix)
        try:
            return _build(spec, _Steps(progress))
        except Exception:
            _down_unlocked(spec.prefix)  # a failed `up` leaves nothing (a verifier rejection, a dead sshd)
            raise


def _node_lines(spec: LabSpec, node: NodeSpec) -> list[str]:
    extra = health.node_side(spec, node) if spec.datapath == "ebpf" else []
    return links.node_batch(spec, node) + extra


def _add_pod_netns(spec: LabSpec) -> None:
    for pod in spec.pods:
        try:
            add_netns(spec.pod_netns(pod), QUIET_SYSCTLS)
        except OSError as exc:
            raise LabError(f"building the lab failed: pod {pod.qualified_name}'s netns: {exc}") from exc


def _make_devices(spec: LabSpec, steps: _Steps, pool: ThreadPoolExecutor, made: Future[None]) -> None:
    """The namespaces and every device in them; `made` is resolved as soon as every device a BPF program
    goes on exists (the nodes' side), so the slow tcx attaches overlap the pods' side of the veths."""
    ebpf = spec.datapath == "ebpf"
    with steps.step("namespaces", log=f"{3 + len(spec.nodes) + len(spec.pods)} netns"):
        health_ns = [health.health_netns(spec, n) for n in spec.nodes] if ebpf else []
        names = [spec.vpc_netns, *(spec.node_netns(n.name) for n in spec.nodes)]
        # marked before they exist: `down` removes only what carries the lab's mark (lab/owned.py)
        mark(spec.prefix, [*names, *health_ns, *(spec.pod_netns(p) for p in spec.pods)])
        batch = [f"netns add {name}" for name in [*names, *health_ns]]
        _wait_all([("netns", _ip_batch(batch))])  # sets up /run/netns
        list(pool.map(lambda name: write_sysctls(name, NODE_SYSCTLS), names))
        # the pods' from this process, one after another in a worker thread (lab/netns.py add_netns:
        # `ip netns add` costs O(namespaces) each; mounts take one lock, so more threads only wait)
        pool.submit(_add_pod_netns, spec).result()
    with steps.step("links", log="VPC bridge, ens4, cilium_host/net, cilium_vxlan, lxc veths"):
        _wait_all([("vpc", _ip_batch(links.vpc_batch(spec), netns=spec.vpc_netns))])
        _wait_all(
            [(n.name, _ip_batch(_node_lines(spec, n), netns=spec.node_netns(n.name))) for n in spec.nodes]
        )
        made.set_result(None)
        procs = [
            (
                f"{n.name} fdb",
                _ip_batch(links.fdb_batch(spec, n), netns=spec.node_netns(n.name), tool="bridge"),
            )
            for n in spec.nodes
        ]
        if ebpf:
            procs += [
                (
                    f"{n.name} lxc_health",
                    _ip_batch(health.endpoint_side(spec, n), netns=health.health_netns(spec, n)),
                )
                for n in spec.nodes
            ]
        # the pods' side over netlink from worker threads (lab/netlink.py: `ip -n` per pod is O(N²))
        configured = pool.map(lambda pod: configure_pod(spec, pod), spec.pods)
        _wait_all(procs)
        list(configured)


def _build(spec: LabSpec, steps: _Steps) -> LabState:
    t0 = time.monotonic()
    run_dir = state_dir(spec.prefix)
    run_dir.mkdir(parents=True, exist_ok=True)
    pool = ThreadPoolExecutor(max_workers=8)
    # the eBPF datapath loads its programs while the devices are made, attaches once they exist and goes
    # on while the rest comes up: its tcx attaches are the slowest part, one at a time (datapath.up)
    devices: Future[None] = Future()
    ebpf = spec.datapath == "ebpf"
    bpf = pool.submit(datapath.start, spec, _maybe_crash, devices.result) if ebpf else None
    try:
        try:
            _make_devices(spec, steps, pool, devices)
        except BaseException as exc:
            if not devices.done():
                devices.set_exception(exc)  # the loader stops waiting and lets go of its programs
            raise
        with steps.step("kube-proxy", log="iptables nat: KUBE-SERVICES → KUBE-SVC → KUBE-SEP → DNAT"):
            apply_kube_proxy(spec)
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


def leftovers(prefix: str) -> dict[str, list[str]]:
    """Everything on this machine that the lab with this prefix made: what carries its mark.

    A netns merely named like the lab (`<prefix>.foo`, made by hand) is listed as `not_ours`
    and never touched.
    """
    owned = f"{state_dir(prefix).name}."
    mine = set(marked(prefix))
    named = [n for n in list_netns() if n.startswith(owned)]
    etc = sorted(ETC_NETNS / n for n in mine if (ETC_NETNS / n).exists())
    found = {
        "netns": [n for n in named if n in mine],
        "not_ours": [n for n in named if n not in mine],
        "etc_netns": [str(p) for p in etc],
        "bpffs": datapath.leftovers(prefix),
        "state": [str(state_dir(prefix))] if state_dir(prefix).exists() else [],
        "marks": sorted(mine),
    }
    found["processes"] = [str(pid) for pids in pids_in(found["netns"]).values() for pid in pids]
    return {k: v for k, v in found.items() if v}


def down(prefix: str) -> dict[str, list[str]]:
    """Remove every netns, process, /etc/netns entry and state file of the lab; return what was removed."""
    require_root()
    with locked(prefix):
        return _down_unlocked(prefix)


def _stray_daemons(prefix: str) -> list[int]:
    """The state's sshd/dnsmasq still running though their netns was deleted by someone else.

    Checked to be ours (their command line names the lab's state dir) before anything is ended.
    """
    try:
        state = load_state(prefix)
    except LabError:
        return []
    if state is None:
        return []
    pids = [state.dns_pid, *(n.sshd_pid for n in state.nodes)]
    return [pid for pid in pids if _ours(pid, state.state_dir)]


def _down_unlocked(prefix: str) -> dict[str, list[str]]:
    found = leftovers(prefix)
    netns = found.get("netns", [])
    in_netns = [int(p) for p in found.get("processes", [])]
    strays = [pid for pid in _stray_daemons(prefix) if pid not in in_netns]
    if strays:
        found["stray_daemons"] = [str(pid) for pid in strays]
    workdirs = _capture_workdirs(in_netns)
    _end_processes(in_netns + strays)
    # a second look: a process may have been starting while we looked the first time
    _end_processes([pid for pids in pids_in(netns).values() for pid in pids])
    if netns:
        proc = _ip_batch([f"netns del {name}" for name in netns])
        assert proc.stderr is not None
        err = proc.stderr.read().decode().strip()
        if proc.wait() != 0 and any(n in list_netns() for n in netns):
            raise LabError(f"could not delete every namespace: {err}")
    # after the namespaces: with the pins gone the kernel frees the lab's links, programs and maps
    datapath.down(prefix)
    # side by side: an rmdir here waits ~2 ms on the disk, and a pod has one folder (3000 pods: 8 s → 0.4 s)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda path: remove_inside(path, ETC_NETNS), found.get("etc_netns", [])))
    for workdir in workdirs:
        # a capture's folder on a lab node is on this machine's /tmp; its own watcher was just ended
        remove_inside(workdir, TMP_DIR)
    workdirs |= set(sweep_orphans(prefix))
    if workdirs:
        found["capture_dirs"] = sorted(workdirs)
    remove_inside(state_dir(prefix), RUN_DIR)
    unmark(prefix, found.pop("marks", []))
    # the lock file stays: see owned.locked
    return found


CAPTURE_WORKDIR = re.compile(r"^/tmp/labyrinth-cap-(?:[a-z][a-z0-9-]{0,15}-)?[0-9a-f]{12}$")


def orphan_capture_dirs(prefix: str, min_age: float = 10.0, tmp: Path = TMP_DIR) -> set[str]:
    """Lab `prefix`'s capture folders in `tmp` that no process names any more, older than `min_age` s.

    Lab nodes share this machine's /tmp. An app killed between ending a capture and removing its
    folder leaves one that no watcher names; `down` removes those too — its own lab's only (the
    folder's name carries the prefix). A folder just made (its capture not started yet) is younger
    than `min_age` and is left alone.
    """
    mine = capture_workdir_pattern(prefix)
    candidates = {str(p) for p in tmp.glob(f"labyrinth-cap-{prefix}-*") if mine.fullmatch(str(p))}
    if not candidates:
        return set()
    named: set[str] = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        for arg in args:
            text = arg.decode(errors="replace")
            named |= {c for c in candidates if text == c or text.startswith(c + "/")}
    now = time.time()
    orphans = set()
    for path in candidates - named:
        with contextlib.suppress(OSError):
            if now - os.lstat(path).st_mtime >= min_age:
                orphans.add(path)
    return orphans


def sweep_orphans(prefix: str) -> list[str]:
    """Remove lab `prefix`'s own leftover temporary folders (a killed app's or record's); return them."""
    swept = sorted(orphan_capture_dirs(prefix) | orphan_run_roots(prefix))
    return [path for path in swept if remove_inside(path, TMP_DIR)]


def _capture_workdirs(pids: list[int]) -> set[str]:
    """The capture folders named on the command lines of the lab's processes (CaptureStreams' watchers)."""
    found = set()
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        found |= {a.decode() for a in args if CAPTURE_WORKDIR.match(a.decode(errors="replace"))}
    return found


def _end_processes(pids: list[int]) -> None:
    """TERM, then KILL what is still there after a short grace. Only PIDs found in our namespaces."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 1.0
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        remaining = [pid for pid in remaining if _reap_or_alive(pid)]
        if remaining:
            time.sleep(0.01)  # processes are exiting after TERM
    for pid in remaining:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _reap_or_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return _alive(pid) and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def status(prefix: str) -> tuple[LabState | None, dict[str, list[str]]]:
    """The lab's state if it is up, and whatever of it exists on the machine."""
    state = load_state(prefix) if state_dir(prefix).exists() else None
    return state, leftovers(prefix)
