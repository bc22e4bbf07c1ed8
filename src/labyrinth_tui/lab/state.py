"""LabState: what a running lab is made of (state.json), and where its files live."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labyrinth_tui.lab.spec import check_prefix
from labyrinth_tui.model.decode import DecodeError, decode, loads

RUN_DIR = Path(os.environ.get("LABYRINTH_RUN_DIR", "/run/labyrinth"))
ETC_NETNS = Path("/etc/netns")
TMP_DIR = Path("/tmp")  # lab nodes share this machine's /tmp: capture folders live there
STATE_MAX_BYTES = 16 << 20  # a 600-pod lab's state.json is ~400 kB


class LabError(RuntimeError):
    """A lab operation failed; the message says what and why, for a person."""


@dataclass(slots=True)
class SshInfo:
    port: int
    host_key: str  # "ssh-ed25519 AAAA…", pinned by clients
    user: str
    client_key: str  # path of the lab's private key


@dataclass(slots=True)
class NodeState:
    name: str
    netns: str
    address: str
    role: str
    pod_cidr: str
    gateway: str
    ssh: SshInfo
    sshd_pid: int = 0


@dataclass(slots=True)
class PodState:
    namespace: str
    name: str
    node: str
    netns: str
    ip: str
    host_veth: str
    gateway: str


@dataclass(slots=True)
class PortState:
    name: str
    protocol: str
    port: int
    target_port: int


@dataclass(slots=True)
class ServiceState:
    namespace: str
    name: str
    cluster_ip: str
    ports: list[PortState]
    endpoints: list[str]


@dataclass(slots=True)
class LabState:
    prefix: str
    state_dir: str
    datapath: str
    pods_per_node: int
    up_seconds: float
    nodes: list[NodeState] = field(default_factory=list)
    pods: list[PodState] = field(default_factory=list)
    services: list[ServiceState] = field(default_factory=list)
    dns_pid: int = 0
    bpf_attach: str = ""  # ebpf: "tcx" or "tc" (classic clsact filters); "" with iptables
    datapath_note: str = ""  # why the lab is not on the datapath asked for (BPF cannot load here)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> LabState:
        """Typed and checked: every field's type, and every name and pid belongs to this lab (DecodeError)."""
        state = decode(cls, data)
        owned = f"{state.prefix}."
        try:
            check_prefix(state.prefix)
        except ValueError as exc:
            raise DecodeError("$.prefix", str(exc)) from None
        netns = [(f"$.nodes[{i}].netns", n.netns) for i, n in enumerate(state.nodes)]
        netns += [(f"$.pods[{i}].netns", p.netns) for i, p in enumerate(state.pods)]
        for where, name in netns:
            if not name.startswith(owned) or "/" in name or len(name) > 64:
                raise DecodeError(where, f"expected a netns named {owned}…")
        pids = [
            ("$.dns_pid", state.dns_pid),
            *((f"$.nodes[{i}].sshd_pid", n.sshd_pid) for i, n in enumerate(state.nodes)),
        ]
        for where, pid in pids:
            if not 0 <= pid < 1 << 22:
                raise DecodeError(where, "expected a process id")
        return state


def state_dir(prefix: str) -> Path:
    return RUN_DIR / check_prefix(prefix)


def state_file(prefix: str) -> Path:
    return state_dir(prefix) / "state.json"


def save_state(state: LabState) -> None:
    path = state_file(state.prefix)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2))
    tmp.replace(path)  # atomic: a reader sees the old state or the new one, never half


def load_state(prefix: str) -> LabState | None:
    path = state_file(prefix)
    hint = f"`labyrinth lab down --prefix {prefix}` cleans up"
    try:
        with path.open("rb") as f:
            raw = f.read(STATE_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LabError(f"{path} cannot be read ({exc.strerror}); {hint}") from None
    try:
        if len(raw) > STATE_MAX_BYTES:
            raise DecodeError("$", f"larger than {STATE_MAX_BYTES >> 20} MB")
        state = LabState.from_json(loads(raw))
    except DecodeError as exc:
        raise LabError(f"{path} is damaged {exc}; {hint}") from None
    if state.prefix != prefix or Path(state.state_dir) != state_dir(prefix):
        raise LabError(f"{path} is damaged: it names lab {state.prefix[:20]!r}, not {prefix!r}; {hint}")
    return state
