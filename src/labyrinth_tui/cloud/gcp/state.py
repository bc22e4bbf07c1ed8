"""A cluster's local state: its directory, its SSH key (0600) and state.json with the nodes after `up`."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labyrinth_tui.cloud.gcp.errors import GcpError
from labyrinth_tui.cloud.gcp.spec import NodeAccess

CONFIG_ENV = "LABYRINTH_CONFIG_DIR"
KEY_NAME = "id_ed25519"
STATE_NAME = "state.json"


def config_root() -> Path:
    """$LABYRINTH_CONFIG_DIR, else ~/.config/labyrinth."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env).expanduser() if env else Path.home() / ".config" / "labyrinth"


def cluster_dir(cluster: str, root: Path | None = None) -> Path:
    return (root or config_root()) / "gcp" / cluster


@dataclass(slots=True)
class ClusterState:
    """What survives between runs; the cloud itself stays the truth (`down` works without this)."""

    cluster: str
    project: str = ""
    region: str = ""
    zone: str = ""
    ssh_user: str = ""
    private_key_path: str = ""
    nodes: list[NodeAccess] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterState:
        nodes = [NodeAccess(**node) for node in data.pop("nodes", [])]
        return cls(**data, nodes=nodes)


class StateDir:
    """One cluster's directory: ~/.config/labyrinth/gcp/<cluster>/ (0700)."""

    def __init__(self, cluster: str, root: Path | None = None) -> None:
        self.cluster = cluster
        self.path = cluster_dir(cluster, root)

    @property
    def key_path(self) -> Path:
        return self.path / KEY_NAME

    @property
    def state_path(self) -> Path:
        return self.path / STATE_NAME

    def _make(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)

    def ensure_key(self, ssh_user: str) -> str:
        """The cluster's public key line ("ssh-ed25519 AAAA… comment"), generating the pair once."""
        self._make()
        public = self.key_path.with_suffix(".pub")
        if self.key_path.exists() and public.exists():
            if stat.S_IMODE(self.key_path.stat().st_mode) != 0o600:
                os.chmod(self.key_path, 0o600)  # ssh refuses a private key others can read
            return public.read_text(encoding="ascii").strip()
        import asyncssh

        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"{ssh_user}@labyrinth-{self.cluster}")
        self.key_path.unlink(missing_ok=True)
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.export_private_key("openssh"))
        line = key.export_public_key("openssh").decode("ascii").strip()
        public.write_text(line + "\n", encoding="ascii")
        return line

    def load(self) -> ClusterState | None:
        try:
            return ClusterState.from_json(json.loads(self.state_path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, AttributeError) as e:  # not JSON, or not our shape
            raise GcpError(f"{self.state_path} is unreadable ({e}); move it away and re-run") from None

    def save(self, state: ClusterState) -> None:
        self._make()
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.state_path)  # a crash mid-write leaves the old state, never half of one

    def remove(self) -> None:
        """After a verified-clean `down`: the key and the state go; anything else in the folder stays."""
        for path in (self.key_path, self.key_path.with_suffix(".pub"), self.state_path):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: someone keeps their own files there
            self.path.rmdir()
