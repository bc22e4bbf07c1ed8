"""Bring the eBPF datapath up on every node (load, fill the service table, attach, pin) and take it down.

Everything lives in one bpffs the lab mounts at /run/labyrinth/<prefix>/bpf: per node a `maps/`
folder (the service table, conntrack and counters, shared by the node's three objects through libbpf's
pin-path reuse) and, with tcx, a `links/` folder holding one pinned link per attachment — the pins are
what keep the programs attached once the loader exits. Classic tc filters (kernels without tcx) live
in the node's clsact qdiscs instead. `lab down` deletes the namespaces, then unmounts the bpffs: with
the pins gone the kernel frees every link, program and map. Nothing is attached in the root
namespace: the attaching thread enters each node's netns in turn.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from labyrinth_tui.lab.bpf import libbpf
from labyrinth_tui.lab.bpf.compile import CompileError, cached, objects
from labyrinth_tui.lab.bpf.health import HEALTH_VETH
from labyrinth_tui.lab.bpf.maps import backend_entry, frontends, service_entries
from labyrinth_tui.lab.netns import namespaces_held, visiting
from labyrinth_tui.lab.spec import LabSpec, NodeSpec
from labyrinth_tui.lab.state import LabError, state_dir

ATTACH_KINDS = ("tcx", "tc")
TCX_KERNEL = (6, 6)
MS_NODEV, MS_NOSUID, MS_NOEXEC, MNT_DETACH = 4, 2, 8, 2
_libc = ctypes.CDLL(None, use_errno=True)
Checkpoint = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Attachment:
    ifname: str
    program: str
    family: str
    ingress: bool

    @property
    def object_key(self) -> str:
        """Which loaded object runs here: every endpoint (lxc…) gets its own copy of bpf_lxc, as in Cilium,
        so `bpftool link` lists one program id per lxc; the node's other devices share their family's."""
        return f"{self.family}:{self.ifname}" if self.family == "bpf_lxc" else self.family

    @property
    def pin_name(self) -> str:
        # bpffs refuses names with a dot (EPERM); a device name cannot hold a colon
        return f"{self.ifname}:{'ingress' if self.ingress else 'egress'}"


def attachments(spec: LabSpec, node: NodeSpec) -> list[Attachment]:
    """What runs where on a node, in the order of the article's `bpftool link`."""
    fixed = [
        Attachment("cilium_vxlan", "cil_from_overlay", "bpf_overlay", True),
        Attachment("cilium_vxlan", "cil_to_overlay", "bpf_overlay", False),
        Attachment("cilium_host", "cil_to_host", "bpf_host", True),
        Attachment("cilium_host", "cil_from_host", "bpf_host", False),
        Attachment("cilium_net", "cil_to_host", "bpf_host", True),
        Attachment("ens4", "cil_from_netdev", "bpf_host", True),
        Attachment(HEALTH_VETH, "cil_from_container", "bpf_lxc", True),
    ]
    pods = [Attachment(p.host_veth, "cil_from_container", "bpf_lxc", True) for p in spec.pods_on(node.name)]
    return fixed + pods


def bpffs(prefix: str) -> Path:
    return state_dir(prefix) / "bpf"


def node_pins(prefix: str, node: str) -> Path:
    return bpffs(prefix) / node


def kernel_has_tcx(release: str | None = None) -> bool:
    numbers = (release or os.uname().release).split("-")[0].split(".")
    try:
        return (int(numbers[0]), int(numbers[1])) >= TCX_KERNEL
    except (ValueError, IndexError):
        return False


def choose_attach(wanted: str) -> str:
    """auto → tcx where the kernel has it (≥ 6.6), else classic tc, as Cilium 1.17 does."""
    if wanted == "auto":
        return "tcx" if kernel_has_tcx() else "tc"
    return wanted


def is_mounted(path: Path) -> bool:
    target = str(path)
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as info:
        return any(line.split()[4] == target for line in info)
    return False


def mount_bpffs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if is_mounted(path):
        return
    flags = MS_NODEV | MS_NOSUID | MS_NOEXEC
    if _libc.mount(b"bpf", str(path).encode(), b"bpf", flags, b"mode=0700") != 0:
        errno = ctypes.get_errno()
        raise libbpf.BpfError(errno, f"mount bpffs at {path}: {os.strerror(errno)}")


def unmount_bpffs(path: Path) -> bool:
    """Unmount (detached, so a reader holding it open cannot block `down`); True if it was mounted."""
    found = False
    while is_mounted(path):  # mounted twice by a race: take every layer away
        found = True
        if _libc.umount2(str(path).encode(), MNT_DETACH) != 0:
            errno = ctypes.get_errno()
            raise libbpf.BpfError(errno, f"unmount {path}: {os.strerror(errno)}")
    return found


def up(spec: LabSpec, attach: str, checkpoint: Checkpoint, ready: Callable[[], None] = lambda: None) -> None:
    """Compile (cached), mount, load every node, wait for `ready()` (returns once the rest of the lab is up,
    raises if bringing it up failed), then attach everything; BpfError on failure.

    Loading needs no device, so the caller starts this before making them. Attaching a tcx link waits
    for an RCU grace period under the rtnl lock (kernel/bpf/tcx.c: tcx_entry_sync()), one at a time
    machine-wide: 8-9 ms each here whether from one thread or several namespaces at once, devices up or
    down, one link per device or all on one (bench/lab_ebpf.py measures it beside `lab up`); classic tc
    filters take ~0.1 ms. That floor is why the attach step is the last thing `lab up` waits for.
    """
    built = {family: str(path) for family, path in objects().items()}
    mount_bpffs(bpffs(spec.prefix))
    checkpoint("bpf-mounted")
    loaded: dict[str, dict[str, libbpf.BpfObject]] = {}
    copies: dict[str, Future[dict[str, libbpf.BpfObject]]] = {}
    try:
        with ThreadPoolExecutor(max_workers=len(spec.nodes)) as loaders:
            families = {node.name: loaders.submit(_load_families, spec, node, built) for node in spec.nodes}
            for name, future in families.items():
                loaded[name] = future.result()
            checkpoint("bpf-loaded")
            # each endpoint's own bpf_lxc loads after the node's shared objects, while the lab comes up
            copies = {
                node.name: loaders.submit(_load_copies, node_pins(spec.prefix, node.name), built, items)
                for node in spec.nodes
                for items in [attachments(spec, node)]
            }
            ready()
            # Nothing but attaches once the first starts: a tcx attach's synchronize_rcu() waits out any
            # grace period already running before its own, and anything that queues an RCU callback
            # starts one (a closed socket, as if_nametoindex makes; a closed namespace file): with those
            # between the attaches a link took 12-16 ms, without them 8-9 ms, the floor's. So the
            # endpoints' copies are loaded, every index read and every namespace opened before it.
            own = {node.name: copies[node.name].result() for node in spec.nodes}
            plan = {node.name: attachments(spec, node) for node in spec.nodes}
            with visiting([spec.node_netns(n.name) for n in spec.nodes]) as enter:
                indexes: dict[str, dict[str, int]] = {}
                for node in spec.nodes:
                    enter(spec.node_netns(node.name))
                    indexes[node.name] = {a.ifname: socket.if_nametoindex(a.ifname) for a in plan[node.name]}
                # from this one thread: more attach no faster (the rtnl lock takes them one by one) and
                # starve `lab up`'s other rtnl users (iptables-restore behind 8 waiting attachers took
                # 0.2-0.4 s, not 20 ms)
                for node in spec.nodes:
                    enter(spec.node_netns(node.name))
                    _attach_node(
                        attach,
                        node_pins(spec.prefix, node.name),
                        plan[node.name],
                        indexes[node.name],
                        {**loaded[node.name], **own[node.name]},
                    )
    finally:
        for future in copies.values():  # the pool is shut down: every copy is loaded or failed
            if future.exception() is None:
                for obj in future.result().values():
                    obj.close()
        for objs in loaded.values():
            for obj in objs.values():
                obj.close()
    checkpoint("bpf-attached")


def _load_families(spec: LabSpec, node: NodeSpec, built: dict[str, str]) -> dict[str, libbpf.BpfObject]:
    """The node's bpf_lxc, bpf_overlay and bpf_host, its maps made and pinned, its service map filled."""
    pins = node_pins(spec.prefix, node.name)
    (pins / "maps").mkdir(parents=True, exist_ok=True)
    (pins / "links").mkdir(exist_ok=True)
    loaded: dict[str, libbpf.BpfObject] = {}
    try:
        # one after the other: the first creates and pins the shared maps, the others reuse them
        for family in ("bpf_lxc", "bpf_overlay", "bpf_host"):
            loaded[family] = libbpf.BpfObject(built[family], pin_dir=str(pins / "maps"))
        _fill_services(spec, loaded["bpf_lxc"])
    except BaseException:
        for obj in loaded.values():
            obj.close()
        raise
    return loaded


def _load_copies(pins: Path, built: dict[str, str], items: list[Attachment]) -> dict[str, libbpf.BpfObject]:
    """Every endpoint's own copy of its family's object (see Attachment.object_key), the maps reused."""
    loaded: dict[str, libbpf.BpfObject] = {}
    try:
        for item in items:
            if item.object_key != item.family and item.object_key not in loaded:
                loaded[item.object_key] = libbpf.BpfObject(built[item.family], pin_dir=str(pins / "maps"))
    except BaseException:
        for obj in loaded.values():
            obj.close()
        raise
    return loaded


def _attach_node(
    attach: str,
    pins: Path,
    items: list[Attachment],
    indexes: dict[str, int],
    objs: dict[str, libbpf.BpfObject],
) -> None:
    """Attach a node's programs from this thread, already in the node's namespace; pin each tcx link."""
    for item in items:
        prog_fd = objs[item.object_key].prog_fd(item.program)
        ifindex = indexes[item.ifname]
        if attach == "tc":
            libbpf.tc_attach(prog_fd, ifindex, item.ingress)
            continue
        kind = libbpf.BPF_TCX_INGRESS if item.ingress else libbpf.BPF_TCX_EGRESS
        link_fd = libbpf.link_create(prog_fd, ifindex, kind)
        try:
            libbpf.obj_pin(link_fd, str(pins / "links" / item.pin_name))
        finally:
            os.close(link_fd)


def _fill_services(spec: LabSpec, obj: libbpf.BpfObject) -> None:
    services, backends = obj.map_fd("lb4_services"), obj.map_fd("lb4_backends")
    for frontend in frontends(spec):
        for backend in frontend.backends:
            libbpf.map_update(backends, *backend_entry(backend))
        for key, value in service_entries(frontend):
            libbpf.map_update(services, key, value)


def down(prefix: str, timeout: float = 3.0) -> list[str]:
    """Unmount the lab's bpffs (its pins are the last references to links, programs and maps), then wait
    until the kernel has freed them: it does so asynchronously, after the namespaces' own cleanup work
    (by hand: 11 of 18 programs still listed by `bpftool prog show` right after `lab down`, none 0.2 s
    later). A map outlives every program using it, so "its maps are gone" means "its programs are"."""
    path = bpffs(prefix)
    if not is_mounted(path):
        return []
    pinned = _pinned_ids(path)
    # unpin first: every `ip netns exec` started after the mount (another lab's sshd, say) holds a copy
    # of it in its own mount namespace, which an unmount here does not reach (/ is a private mount),
    # so the superblock — and every pin in it — would live on there; an unlink reaches them all
    for node in path.iterdir():
        shutil.rmtree(node, ignore_errors=True)
    unmount_bpffs(path)
    pinned = wait_freed(pinned, timeout, libbpf.exists, namespaces_held)
    if pinned:
        raise LabError(
            f"the kernel still holds {len(pinned)} BPF objects of lab {prefix!r}, "
            f"none freed (nor any network namespace) for {timeout:.0f} s"
        )
    return [str(path)]


def wait_freed(
    pinned: list[tuple[str, int]],
    timeout: float,
    exists: Callable[[str, int], bool],
    namespaces: Callable[[], int | None],
) -> list[tuple[str, int]]:
    """Wait while the kernel frees `pinned`; what is still held once `timeout` s passed with no progress.

    Progress is an object freed or a network namespace freed. The namespaces' cleanup uninstalls each
    device's tcx hook after a grace period of its own (kernel/bpf/tcx.c: tcx_uninstall), so 3 × 100
    pods' 321 links take ~4 s to go, steadily; but a lab of 423 pods, taken down while the machine was
    busy, freed none of its 84 last objects for over 3 s while the kernel was still freeing its
    namespaces (bench/attach_scale.py): that is progress too, not a stuck kernel.
    """
    deadline = time.monotonic() + timeout
    held = namespaces()
    while pinned and time.monotonic() < deadline:
        still = [(kind, ident) for kind, ident in pinned if exists(kind, ident)]
        freed = len(still) < len(pinned)
        if not freed:  # only then read the namespaces' count (a file of ~200 lines, every 10 ms)
            now_held = namespaces()
            freed = now_held is not None and held is not None and now_held < held
            held = now_held
        else:
            held = None  # read again from the next check on: a count from before is no baseline
        if freed:
            deadline = time.monotonic() + timeout
        pinned = still
        if pinned:
            time.sleep(0.01)  # the kernel's cleanup work is running
    return pinned


def _pinned_ids(path: Path) -> list[tuple[str, int]]:
    """(map|link, id) of every object pinned under the lab's bpffs; struct bpf_{map,link}_info has id at 4."""
    found = []
    for pin in path.glob("*/*/*"):
        kind = "map" if pin.parent.name == "maps" else "link"
        with contextlib.suppress(OSError):
            fd = libbpf.obj_get(str(pin))
            try:
                found.append((kind, int.from_bytes(libbpf.obj_info(fd)[4:8], sys.byteorder)))
            finally:
                os.close(fd)
    return found


def leftovers(prefix: str) -> list[str]:
    path = bpffs(prefix)
    return [str(path)] if is_mounted(path) else []


def unavailable_reason() -> str | None:
    """Why BPF cannot be loaded here at all (then the lab falls back to iptables), or None."""
    try:
        libbpf.lib()
    except (libbpf.BpfUnavailable, OSError) as exc:
        return str(exc)
    # BPF_PROG_LOAD with no program: EINVAL when bpf() works, EPERM/ENOSYS when it cannot
    nr_bpf = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
    if nr_bpf is None:
        return None
    attr = ctypes.create_string_buffer(128)
    if _libc.syscall(nr_bpf, 5, attr, len(attr)) < 0:
        errno = ctypes.get_errno()
        if errno in (1, 38):
            return f"the bpf() system call is refused here ({os.strerror(errno)})"
    return None


@dataclass(frozen=True, slots=True)
class Started:
    datapath: str  # "ebpf", or "iptables" when BPF cannot be loaded here at all
    attach: str  # "tcx" | "tc" | ""
    note: str  # why it fell back, for the user


def fallback_reason() -> str | None:
    """Why an ebpf lab would fall back to iptables here (BPF refused, no clang and no cached objects)."""
    reason = unavailable_reason()
    if reason is None and shutil.which("clang") is None and not cached():
        reason = "clang is not installed (apt-get install -y clang llvm libbpf-dev, or: make setup)"
    return reason


def start(spec: LabSpec, checkpoint: Checkpoint, ready: Callable[[], None] = lambda: None) -> Started:
    """The ebpf datapath, or iptables and why when BPF cannot load here. LabError on a real failure.
    `ready` returns once the rest of the lab is up (see `up`)."""
    reason = fallback_reason()
    if reason is not None:
        return Started(
            "iptables", "", f"eBPF cannot be loaded here: {reason}; kube-proxy's iptables carry it"
        )
    attach = choose_attach(spec.bpf_attach)
    try:
        up(spec, attach, checkpoint, ready)
    except (libbpf.BpfError, CompileError, OSError) as exc:
        raise LabError(f"the eBPF datapath failed: {exc}") from exc
    return Started("ebpf", attach, "")
