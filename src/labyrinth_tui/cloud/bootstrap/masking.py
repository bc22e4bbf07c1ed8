"""Masking of cluster credentials (join tokens, CA hashes, keys) in anything shown, logged or raised."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Final

from labyrinth_tui.model.progress import Step

MASK: Final = "********"

# kubeadm bootstrap tokens are "[a-z0-9]{6}.[a-z0-9]{16}": id and secret both go. Wherever the shape
# appears, even glued to other text: masking a harmless look-alike costs less than showing a token
_TOKEN_RE: Final = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
_CA_HASH_RE: Final = re.compile(r"sha256:[0-9a-fA-F]{64}")
_CERT_KEY_RE: Final = re.compile(r"(--certificate-key[= ]+)[0-9a-fA-F]{16,}")
_PEM_RE: Final = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
# kubeconfig / YAML / JSON fields whose value is a credential
_FIELD_RE: Final = re.compile(
    r"""(?P<key>["']?(?:client-key-data|client-certificate-data|token|password|caCertHashes|"""
    r"""certificateKey|id-token|refresh-token|access-token)["']?\s*[:=]\s*)"""
    r"""(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s,}\]]+)"""
)
_BEARER_RE: Final = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_MIN_KNOWN: Final = 6  # shorter "secrets" would mask ordinary words


def mask_secrets(text: str, known: Iterable[str] = ()) -> str:
    """`text` with every credential it holds replaced by a mask; `known` adds exact secrets to hide."""
    if not text:
        return text
    text = _PEM_RE.sub(lambda m: f"-----BEGIN {m.group(1)}----- {MASK} -----END {m.group(1)}-----", text)
    text = _CA_HASH_RE.sub(f"sha256:{MASK}", text)
    text = _TOKEN_RE.sub(f"{MASK[:6]}.{MASK}", text)
    text = _CERT_KEY_RE.sub(lambda m: m.group(1) + MASK, text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + MASK, text)
    text = _FIELD_RE.sub(lambda m: m.group("key") + MASK, text)
    # after the patterns, which keep a secret's shape (`******.********`, `sha256:********`)
    for secret in sorted({s for s in known if len(s) >= _MIN_KNOWN}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class Masker:
    """Masks known patterns plus every exact secret learned during a run (a token, a hash, a key)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) >= _MIN_KNOWN:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        return mask_secrets(text, self._secrets)

    def step(self, step: Step) -> Step:
        """The same Step with its log (and names) masked: what the provisioning pane may show."""
        return replace(step, name=self(step.name), log=self(step.log))
