"""JSON ⇄ EvidenceDiff: a journey's evidence (kube-proxy counters, BPF programs) kept in a recording."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from labyrinth_tui.model.bpf import BpfLink
from labyrinth_tui.model.evidence import BpfAttachment, CounterMove, EvidenceDiff, ProgramMove, RuleCounter
from labyrinth_tui.model.serialize import BundleFormatError


def evidence_to_json(diff: EvidenceDiff) -> dict[str, Any]:
    return asdict(diff)


def _move(d: dict[str, Any]) -> CounterMove:
    return CounterMove(RuleCounter(**d["rule"]), d["packets"], d["bytes"])


def evidence_from_json(data: dict[str, Any]) -> EvidenceDiff:
    try:
        return EvidenceDiff(
            node=data["node"],
            moved=tuple(_move(m) for m in data["moved"]),
            bpf=tuple(BpfAttachment(**a) for a in data["bpf"]),
            problems=tuple(data.get("problems", ())),
            kube=tuple(_move(m) for m in data.get("kube", ())),
            programs=tuple(
                ProgramMove(BpfLink(**p["link"]), p["seen"], p["translated"])
                for p in data.get("programs", ())
            ),
        )
    except (KeyError, TypeError) as exc:
        raise BundleFormatError(f"evidence of {data.get('node', '?')!r}: {exc}") from exc
