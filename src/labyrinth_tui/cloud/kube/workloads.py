"""The journey's workloads: namespaces wrk-1/wrk-2, the article's manifests, Running pods, a fresh CoreDNS."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from labyrinth_tui.cloud.kube.client import KubeClient, PodInfo
from labyrinth_tui.cloud.kube.errors import KubeError
from labyrinth_tui.cloud.kube.manifests import DEFAULT_IMAGE, JOURNEY, Manifest, journey_manifests
from labyrinth_tui.model.progress import Step, StepState

Progress = Callable[[Step], None]
GROUP: Final = "cluster"
COREDNS: Final = ("kube-system", "coredns")


@dataclass(frozen=True, slots=True)
class JourneyPods:
    """The article's two pods: the nc client's (wrk-1, on node-1) and the nc server's (wrk-2, on node-2)."""

    client: PodInfo
    server: PodInfo


def _selector(namespace: str) -> str:
    # 1.yaml's pods carry app=node-wrk-1-ubuntu24, 2.yaml's app=node-wrk-2-ubuntu24
    return f"app=node-{namespace}-ubuntu24"


async def journey_pods(kube: KubeClient) -> JourneyPods:
    """The Running pods of wrk-1 and wrk-2; KubeError when either is missing."""
    found = []
    for _, namespace in JOURNEY:
        pods = [p for p in await kube.pods(namespace, label_selector=_selector(namespace)) if p.running]
        if not pods:
            raise KubeError(
                f"no Running pod in {namespace}: deploy the journey first (labyrinth cluster bootstrap)"
            )
        found.append(pods[0])
    return JourneyPods(client=found[0], server=found[1])


async def deploy_journey(
    kube: KubeClient, progress: Progress, *, image: str = DEFAULT_IMAGE, timeout: float = 600.0
) -> JourneyPods:
    """The article's "Journey" set-up, each part a progress step; idempotent (re-applying is harmless)."""

    async def step(name: str, work: Callable[[], Awaitable[list[str]]]) -> None:
        started = time.monotonic()
        progress(Step(GROUP, name, StepState.RUNNING))
        try:
            lines = await work()
        except KubeError as exc:
            progress(Step(GROUP, name, StepState.FAILED, elapsed=time.monotonic() - started, log=str(exc)))
            raise
        progress(Step(GROUP, name, StepState.DONE, 1, 1, time.monotonic() - started, "\n".join(lines)))

    manifests = journey_manifests(image)  # a bad image is refused before anything changes

    async def namespaces() -> list[str]:
        lines = []
        for _, namespace in JOURNEY:
            created = await kube.ensure_namespace(namespace)
            lines.append(f"namespace/{namespace} {'created' if created else 'unchanged'}")
        return lines

    await step("namespaces", namespaces)
    for manifest in manifests:

        async def apply(manifest: Manifest = manifest) -> list[str]:
            return await kube.apply(manifest)

        await step(f"apply {manifest.source.rsplit('/', 1)[-1]}", apply)

    async def running() -> list[str]:
        lines = []
        for _, namespace in JOURNEY:
            pods = await kube.wait_running(namespace, label_selector=_selector(namespace), timeout=timeout)
            lines += [f"{p.namespace}/{p.name} Running on {p.node} at {p.ip}" for p in pods]
        return lines

    await step("pods running", running)

    async def coredns() -> list[str]:
        # the article restarts CoreDNS before the journey, so its pods start after Cilium's datapath
        stamp = await kube.restart_deployment(*COREDNS)
        await kube.wait_rollout(*COREDNS, timeout=timeout)
        return [f"deployment.apps/coredns restarted at {stamp}"]

    await step("restart coredns", coredns)
    return await journey_pods(kube)
