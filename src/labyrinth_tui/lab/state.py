"""LabState: what a running lab is made of (state.json), and where its files live."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RUN_DIR = Path(os.environ.get("LABYRINTH_RUN_DIR", "/run/labyrinth"))
ETC_NETNS = Path("/etc/netns")


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
    def from_json(cls, data: dict[str, Any]) -> LabState:
        nodes = [NodeState(**{**n, "ssh": SshInfo(**n["ssh"])}) for n in data["nodes"]]
        pods = [PodState(**p) for p in data["pods"]]
        services = [
            ServiceState(**{**s, "ports": [PortState(**p) for p in s["ports"]]}) for s in data["services"]
        ]
        rest = {k: v for k, v in data.items() if k not in ("nodes", "pods", "services")}
        return cls(**rest, nodes=nodes, pods=pods, services=services)


def state_dir(prefix: str) -> Path:
    return RUN_DIR / prefix


def state_file(prefix: str) -> Path:
    return state_dir(prefix) / "state.json"


def save_state(state: LabState) -> None:
    path = state_file(state.prefix)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2))
    tmp.replace(path)  # atomic: a reader sees the old state or the new one, never half


def load_state(prefix: str) -> LabState | None:
    path = state_file(prefix)
    try:
        return LabState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(
            f"{path} is damaged ({exc}); `labyrinth lab down --prefix {prefix}` cleans up"
        ) from exc
