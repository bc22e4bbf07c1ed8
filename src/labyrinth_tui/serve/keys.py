"""The server's host key (made once, kept in the config dir) and who may connect, as what (keys only)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import asyncssh

from labyrinth_tui.cloud.gcp.state import config_root

HOST_KEY_NAME = "ssh_host_ed25519_key"
KEY_TYPES = ("ssh-", "ecdsa-", "sk-")


class ServeError(Exception):
    """A bad option or file for `labyrinth serve`, said in one line."""


class Role(StrEnum):
    PRESENTER = "presenter"
    VIEWER = "viewer"


def host_key(root: Path | None = None) -> asyncssh.SSHKey:
    """<config dir>/serve/ssh_host_ed25519_key, generated on first use (0600) and reused after."""
    path = (root or config_root()) / "serve" / HOST_KEY_NAME
    if path.exists():
        try:
            return asyncssh.read_private_key(path)
        except (OSError, asyncssh.KeyImportError) as exc:
            raise ServeError(f"{path}: {exc}; remove it to make a new host key") from exc
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="labyrinth serve")
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.export_private_key())
    partial.replace(path)
    return key


def known_hosts_line(key: asyncssh.SSHKey, host: str, port: int) -> str:
    """What a client puts in its known_hosts to trust this server (OpenSSH's [host]:port form)."""
    name = host if port == 22 else f"[{host}]:{port}"
    algorithm, data = key.export_public_key().decode().split()[:2]
    return f"{name} {algorithm} {data}"


@dataclass(frozen=True, slots=True)
class Person:
    role: Role
    fingerprint: str
    comment: str

    @property
    def who(self) -> str:
        return f"{self.comment} ({self.fingerprint})" if self.comment else self.fingerprint


def read_keys(path: Path) -> dict[bytes, str]:
    """An authorized_keys-style file: public key → its comment. Options before the key are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ServeError(f"{path}: {exc.strerror or exc}") from exc
    keys: dict[bytes, str] = {}
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        start = next((i for i, word in enumerate(words) if word.startswith(KEY_TYPES)), None)
        try:
            if start is None:
                raise asyncssh.KeyImportError("no key type (ssh-ed25519, ssh-rsa, ecdsa-…)")
            key = asyncssh.import_public_key(" ".join(words[start : start + 2]))
        except asyncssh.KeyImportError as exc:
            raise ServeError(f"{path}:{number}: not a public key: {exc}") from exc
        keys[key.public_data] = " ".join(words[start + 2 :])
    return keys


@dataclass
class KeyRing:
    """Presenter keys first (they default to none), then the audience's (a file, or any key)."""

    presenters: dict[bytes, str] = field(default_factory=dict)
    audience: dict[bytes, str] = field(default_factory=dict)
    audience_any_key: bool = False

    def person(self, key: asyncssh.SSHKey) -> Person | None:
        fingerprint = key.get_fingerprint("sha256")
        if key.public_data in self.presenters:
            return Person(Role.PRESENTER, fingerprint, self.presenters[key.public_data])
        if key.public_data in self.audience:
            return Person(Role.VIEWER, fingerprint, self.audience[key.public_data])
        if self.audience_any_key:
            return Person(Role.VIEWER, fingerprint, "")
        return None
