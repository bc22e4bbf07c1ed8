"""Helpers for the GCP tests: a GcpCluster whose real compute_v1 client talks to the local fake GCE."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.auth.credentials import AnonymousCredentials

from labyrinth_tui.cloud.gcp.api import GceApi
from labyrinth_tui.cloud.gcp.cluster import GcpCluster
from labyrinth_tui.cloud.gcp.prices import load_prices
from labyrinth_tui.cloud.gcp.spec import ClusterSpec
from labyrinth_tui.cloud.gcp.state import StateDir
from labyrinth_tui.model.progress import Step, StepState
from tests.fakes.gce_server import FakeGce

CALLER_RANGE = "198.51.100.7/32"  # TEST-NET-2: the caller's SSH source in these tests


def make_cluster(
    gce: FakeGce,
    root: Path,
    *,
    call_timeout: float = 5.0,
    op_timeout: float = 30.0,
    **spec: Any,
) -> GcpCluster:
    spec.setdefault("ssh_source_ranges", (CALLER_RANGE,))
    cluster_spec = ClusterSpec(project=gce.project, **spec)
    api = GceApi(
        cluster_spec.project,
        cluster_spec.region,
        cluster_spec.zone,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        endpoint=gce.endpoint,
        call_timeout=call_timeout,
        op_timeout=op_timeout,
        backoff=0.01,
    )
    return GcpCluster(
        cluster_spec, api, state_dir=StateDir(cluster_spec.cluster, root), prices=load_prices(root)
    )


@dataclass
class Progress:
    """A progress callback that records every Step and the thread it was called on."""

    steps: list[Step] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)

    def __call__(self, step: Step) -> None:
        self.steps.append(step)
        self.threads.add(threading.get_ident())

    def last(self) -> dict[tuple[str, str], Step]:
        return {step.key: step for step in self.steps}

    def states(self, key: tuple[str, str]) -> list[StepState]:
        return [s.state for s in self.steps if s.key == key]


def run(coro: Any) -> Any:
    return asyncio.run(coro)
